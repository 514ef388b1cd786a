"""`srgrad eval`: score bicubic and models on the benchmarks, side by side, in one convention.

Exit codes: 0 done, 2 bad options, a missing data set or model, an unwritable --report, an
unreadable or too small image, or a model whose output is not finite (one line each, nothing
half-written: reports and images are written atomically). An image reconstructed exactly has
an infinite PSNR, and so has its set's mean: a warning line names such images.

Images are decoded as `srgrad upscale` decodes them (EXIF orientation applied) and scored on
8 bits: a 16-bit file is rounded to 8 bits first (datasets.load_rgb).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from srgrad.cli._common import (
    DeviceOption,
    SelfEnsembleOption,
    TileOption,
    flag,
    parse_int_list,
    print_labelled,
    print_plain,
    split_list,
    user_errors,
)
from srgrad.console import console, err_console, progress_bar
from srgrad.data.images import write_image
from srgrad.errors import ConfigError
from srgrad.evaluation.run import (
    BICUBIC,
    DEFAULT_DATASETS,
    DatasetSpec,
    EvalImage,
    EvalRun,
    ImageScore,
    ModelSpec,
    check_available,
    dataset_specs,
    model_specs,
    run_eval,
)
from srgrad.metrics import CONVENTIONS
from srgrad.models.registry import SCALES

_ModelsOption = Annotated[list[str] | None, typer.Option(
    "--model", "-m", show_default=False,
    help="bicubic or a registry model with shipped weights; repeatable or comma-separated. "
    "Default: bicubic and every model shipped for the scale.")]
_WeightsOption = Annotated[list[Path] | None, typer.Option(
    "--weights", "-w", show_default=False, help="A weights file (.safetensors); repeatable.")]
_ScalesOption = Annotated[str | None, typer.Option(
    "--scale", "-s", show_default=False,
    help="2, 3 or 4 (comma-separated for several). Default: the scale of --weights, else 2.")]
_DatasetsOption = Annotated[str | None, typer.Option(
    "--datasets", "-d", show_default=False,
    help="Comma-separated: set5, set14, b100, urban100, div2k-valid or a folder: one with HR/ "
    "(and LR_bicubic/X<scale>/) is read as a benchmark set, any other gives its images as HR. "
    "Default: the four benchmarks that are present under the root.")]
_RootOption = Annotated[Path | None, typer.Option(
    "--root", show_default=False, help="Data root (default $SRGRAD_DATA, else datasets/).")]
_ConventionOption = Annotated[str, typer.Option(
    "--convention", help="y (papers: Y channel, shave=scale), rgb, or div2k (RGB, "
    "shave=scale+6).")]
_PrecisionOption = Annotated[str, typer.Option(
    "--precision",
    help="fp32 (exact, the default for reports), auto, bf16 or fp16 (CUDA); reports name it.")]
_ReportOption = Annotated[list[Path] | None, typer.Option(
    "--report", "-r", show_default=False,
    help="Write a report: .json, .md or .csv by extension; repeatable.")]
_SaveImagesOption = Annotated[Path | None, typer.Option(
    "--save-images", show_default=False,
    help="Save SR outputs as DIR/<model>/<data set>/x<scale>/<image>.png.")]
_CompareOption = Annotated[Path | None, typer.Option(
    "--compare", show_default=False,
    help="Write a zoomed-crop grid (HR, bicubic, each model) per image: "
    "DIR/<data set>/<image>_x<scale>.png.")]


def _split(values: list[str] | None) -> list[str]:
    return [part for value in values or [] for part in split_list(value)]


def _default_models(scales: list[int]) -> list[str]:
    from srgrad.models.weights import shipped_weights

    have = [n for n, ks in shipped_weights().items() if all(k in ks for k in scales)]
    return [BICUBIC, *have]


def _command(options: dict[str, Any], datasets: list[str], scales: list[int]) -> str:
    """The canonical command line of this evaluation (recorded in the reports): the options
    as given, with the scales and data sets resolved."""
    options = {**options, "scale": ",".join(map(str, scales)), "datasets": ",".join(datasets)}
    args = ["srgrad", "eval"]
    for name, value in options.items():
        flag_text = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag_text)
        elif isinstance(value, list):
            args += [part for v in value for part in (flag_text, str(v))]
        elif value is not None and value is not False:
            args += [flag_text, str(value)]
    return shlex.join(args)


@user_errors
def evaluate(
    model: _ModelsOption = None,
    weights: _WeightsOption = None,
    scale: _ScalesOption = None,
    datasets: _DatasetsOption = None,
    recursive: bool = flag(
        "--recursive", help="Also score the images in the subfolders of image folders."),
    root: _RootOption = None,
    convention: _ConventionOption = "y",
    self_ensemble: SelfEnsembleOption = False,
    tile: TileOption = None,
    device: DeviceOption = "auto",
    precision: _PrecisionOption = "fp32",
    report: _ReportOption = None,
    save_images: _SaveImagesOption = None,
    compare: _CompareOption = None,
) -> None:
    """Score models on benchmark sets (PSNR/SSIM) beside the published reference numbers."""
    options = dict(locals())  # the options as given, before anything else is bound here
    from srgrad.evaluation.report import print_tables, write_report

    reports = list(report or [])
    _check_options(convention, tile, reports, save_images, compare)
    specs, scales = _models_and_scales(_split(model), list(weights or []), scale, self_ensemble)
    data = _datasets(datasets, scales, root, recursive)
    command = _command(options, [d.key for d in data], scales)
    run = EvalRun(convention, scales, specs, data, self_ensemble, *_device(device, precision))
    total = sum(len(d.pairs[s]) for d in data for s in scales)
    elapsed = _run_with_progress(run, total, tile, save_images, compare)
    print_tables(run, console)
    for path in reports:
        write_report(path, run, command, elapsed)
        print_plain(f"wrote {path}", err_console)


def _check_options(convention: str, tile: int | None, reports: list[Path],
                   save_images: Path | None, compare: Path | None) -> None:
    """Refuse bad options and unwritable outputs before any image is scored."""
    from srgrad.data.files import check_writable_folder
    from srgrad.evaluation.report import check_report_path
    from srgrad.inference.tiling import check_tile

    if convention not in CONVENTIONS:
        raise ConfigError(f"--convention must be one of {', '.join(CONVENTIONS)}, "
                          f"got {convention!r}")
    check_tile(tile, name="--tile")
    for path in reports:
        check_report_path(path)
    for folder in (save_images, compare):
        if folder is not None:
            check_writable_folder(folder)


def _device(device: str, precision: str) -> tuple[str, str]:
    from srgrad.inference.loading import resolve_device
    from srgrad.models.precision import resolve_precision

    dev = resolve_device(device)
    return str(dev), resolve_precision(precision, dev)


def _models_and_scales(names: list[str], weights: list[Path], scale: str | None,
                       self_ensemble: bool) -> tuple[list[ModelSpec], list[int]]:
    """The models to score and the scales: --scale, else those of --weights, else 2; no
    model named: bicubic and every shipped model that has all the scales."""
    specs = model_specs(names, weights, self_ensemble)
    if scale is not None:
        scales = parse_int_list(scale, "--scale", set(SCALES))
    else:
        scales = sorted({s.scale for s in specs if s.scale is not None}) or [2]
    if not specs:
        specs = model_specs(_default_models(scales), [], self_ensemble)
    check_available(specs, scales)
    return specs, scales


def _datasets(datasets: str | None, scales: list[int], root: Path | None,
              recursive: bool) -> list[DatasetSpec]:
    """The data sets named (or the default benchmarks present), each skipped one said."""
    names = _split([datasets]) if datasets else list(DEFAULT_DATASETS)
    skipped: list[str] = []
    data = dataset_specs(names, scales, root, explicit=datasets is not None, skipped=skipped,
                         recursive=recursive)
    for line in skipped:
        print_labelled("skipped: ", "yellow", line)
    return data


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

    progress = progress_bar()
    with progress:
        task = progress.add_task("images", total=total)
        run_eval(run, tile, on_image if save_images or compare else None,
                 lambda what: progress.update(task, advance=1, description=what))
    return time.monotonic() - started
