"""`srgrad eval`: score bicubic and models on the benchmarks, side by side, in one convention.

Exit codes: 0 done, 2 bad options, a missing data set or model, an unwritable --report, or an
unreadable or too small image (one line each, nothing half-written: reports and images are
written atomically).

Images are decoded as `srgrad upscale` decodes them (EXIF orientation applied) and scored on
8 bits: a 16-bit file is rounded to 8 bits first (datasets.load_rgb).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from srgrad.cli._common import (
    console,
    err_console,
    flag,
    is_tty,
    parse_int_list,
    print_labelled,
    print_plain,
    user_errors,
)
from srgrad.data.images import write_image
from srgrad.errors import ConfigError
from srgrad.evaluation.run import (
    BICUBIC,
    DEFAULT_DATASETS,
    DatasetSpec,
    EvalImage,
    EvalRun,
    ImageScore,
    check_available,
    dataset_specs,
    model_specs,
    run_eval,
)
from srgrad.metrics import CONVENTIONS
from srgrad.models.registry import SCALES


def _split(values: list[str] | None) -> list[str]:
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def _default_models(scales: list[int]) -> list[str]:
    from srgrad.models.weights import shipped_weights

    have = [n for n, ks in shipped_weights().items() if all(k in ks for k in scales)]
    return [BICUBIC, *have]


def _command(names: list[str], weights: list[Path], scales: list[int], datasets: list[str],
             recursive: bool, root: Path | None, convention: str, self_ensemble: bool,
             tile: int | None, device: str, precision: str, reports: list[Path],
             save_images: Path | None, compare: Path | None) -> str:
    """The canonical command line of this evaluation (recorded in the reports)."""
    args = ["srgrad", "eval"]
    args += ["--model", ",".join(names)] if names else []
    for w in weights:
        args += ["--weights", str(w)]
    args += ["--scale", ",".join(map(str, scales)), "--datasets", ",".join(datasets)]
    args += ["--recursive"] if recursive else []
    args += ["--root", str(root)] if root else []
    args += ["--convention", convention] + (["--self-ensemble"] if self_ensemble else [])
    args += (["--tile", str(tile)] if tile else []) + ["--device", device]
    args += ["--precision", precision]
    for r in reports:
        args += ["--report", str(r)]
    args += ["--save-images", str(save_images)] if save_images else []
    args += ["--compare", str(compare)] if compare else []
    return shlex.join(args)


@user_errors
def evaluate(
    model: list[str] | None = typer.Option(
        None, "--model", "-m", show_default=False,
        help="bicubic or a registry model with shipped weights; repeatable or comma-separated. "
        "Default: bicubic and every model shipped for the scale.",
    ),
    weights: list[Path] | None = typer.Option(
        None, "--weights", "-w", show_default=False,
        help="A weights file (.safetensors); repeatable.",
    ),
    scale: str | None = typer.Option(
        None, "--scale", "-s", show_default=False,
        help="2, 3 or 4 (comma-separated for several). Default: the scale of --weights, else 2.",
    ),
    datasets: str | None = typer.Option(
        None, "--datasets", "-d", show_default=False,
        help="Comma-separated: set5, set14, b100, urban100, div2k-valid or a folder: one "
        "with HR/ (and LR_bicubic/X<scale>/) is read as a benchmark set, any other gives its "
        "images as HR. Default: the four benchmarks that are present under the root.",
    ),
    recursive: bool = flag(
        "--recursive", help="Also score the images in the subfolders of image folders."
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Data root (default $SRGRAD_DATA, else datasets/).", show_default=False
    ),
    convention: str = typer.Option(
        "y", "--convention", help="y (papers: Y channel, shave=scale), rgb, or div2k (RGB, "
        "shave=scale+6).",
    ),
    self_ensemble: bool = flag(
        "--self-ensemble", help="Average the 8 flips/rotations (models get a + suffix)."
    ),
    tile: int | None = typer.Option(None, "--tile", help="Tile side in LR pixels (default auto)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option(
        "fp32", "--precision",
        help="fp32 (exact, the default for reports), auto, bf16 or fp16 (CUDA); reports name it.",
    ),
    report: list[Path] | None = typer.Option(
        None, "--report", "-r", show_default=False,
        help="Write a report: .json, .md or .csv by extension; repeatable.",
    ),
    save_images: Path | None = typer.Option(
        None, "--save-images", show_default=False,
        help="Save SR outputs as DIR/<model>/<data set>/x<scale>/<image>.png.",
    ),
    compare: Path | None = typer.Option(
        None, "--compare", show_default=False,
        help="Write a zoomed-crop grid (HR, bicubic, each model) per image: "
        "DIR/<data set>/<image>_x<scale>.png.",
    ),
) -> None:
    """Score models on benchmark sets (PSNR/SSIM) beside the published reference numbers."""
    from srgrad.evaluation.report import check_report_path, print_tables, write_report
    from srgrad.inference.files import prepare_output_folder

    if convention not in CONVENTIONS:
        raise ConfigError(f"--convention must be one of {', '.join(CONVENTIONS)}, "
                          f"got {convention!r}")
    if tile is not None and tile < 1:
        raise ConfigError(f"--tile must be a positive number of pixels, got {tile}")
    reports = list(report or [])
    for path in reports:
        check_report_path(path)
    for folder in (save_images, compare):
        if folder is not None:
            prepare_output_folder(folder)
    from srgrad.inference.forward import resolve_device
    from srgrad.models.precision import resolve_precision

    dev = resolve_device(device)
    resolved = resolve_precision(precision, dev)
    dev = str(dev)
    names = _split(model)
    specs = model_specs(names, list(weights or []), self_ensemble)
    if scale is not None:
        scales = parse_int_list(scale, "--scale", set(SCALES))
    else:
        scales = sorted({s.scale for s in specs if s.scale is not None}) or [2]
    if not specs:
        specs = model_specs(_default_models(scales), [], self_ensemble)
    check_available(specs, scales)
    set_names = _split([datasets]) if datasets else list(DEFAULT_DATASETS)
    skipped: list[str] = []
    data = dataset_specs(set_names, scales, root, explicit=datasets is not None, skipped=skipped,
                         recursive=recursive)
    for line in skipped:
        print_labelled("skipped: ", "yellow", line)
    command = _command(names, list(weights or []), scales, [d.key for d in data], recursive,
                       root, convention, self_ensemble, tile, device, precision, reports,
                       save_images, compare)
    run = EvalRun(convention, scales, specs, data, self_ensemble, dev, resolved)
    total = sum(len(d.pairs[s]) for d in data for s in scales)
    elapsed = _run_with_progress(run, total, tile, save_images, compare)
    print_tables(run, console)
    for path in reports:
        write_report(path, run, command, elapsed)
        print_plain(f"wrote {path}", err_console)


def _run_with_progress(run: EvalRun, total: int, tile: int | None, save_images: Path | None,
                       compare: Path | None) -> float:
    """Run the evaluation under a progress bar (stderr, terminals only); returns seconds."""
    from srgrad.evaluation.compare import write_compare

    started = time.monotonic()

    def on_image(data: DatasetSpec, scale: int, image: EvalImage,
                 outputs: dict[str, tuple[np.ndarray, ImageScore]]) -> None:
        if save_images is not None:
            for label, (sr, _score) in outputs.items():
                # image.name may hold subfolders (--recursive)
                path = save_images / label / data.label / f"x{scale}" / f"{image.name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_image(path, sr)
        if compare is not None:
            write_compare(compare, data.label, scale, image, outputs, run.convention)

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not is_tty(),
    )
    with progress:
        task = progress.add_task("images", total=total)
        run_eval(run, tile, on_image if save_images or compare else None,
                 lambda what: progress.update(task, advance=1, description=what))
    return time.monotonic() - started
