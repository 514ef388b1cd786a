"""`srgrad upscale`: upscale images and folders with a shipped or trained model.

Exit codes: in the command's docstring, which is its --help (values: inference/files.py EXIT_*).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from srgrad.cli._common import (
    ModelOption,
    ScaleOption,
    WeightsOption,
    console,
    err_console,
    flag,
    is_tty,
    print_labelled,
    user_errors,
)
from srgrad.data.images import PNG_LEVEL
from srgrad.errors import ConfigError
from srgrad.inference.files import Job, Outcome, upscale_paths
from srgrad.inference.forward import MIN_TILE


@user_errors
def upscale(
    inputs: list[Path] = typer.Argument(
        ..., help="Image files and/or folders (walked recursively).", show_default=False
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o",
        help="Output folder (created if needed); with one input file, may name the output file.",
    ),
    scale: ScaleOption = None,
    model: ModelOption = None,
    weights: WeightsOption = None,
    tile: int | None = typer.Option(
        None, "--tile",
        help=f"Tile side in input pixels, at least {MIN_TILE} (default: automatic, to bound "
        "memory).",
    ),
    self_ensemble: bool = flag(
        "--self-ensemble", help="Average the 8 flips/rotations (8x slower, a bit better)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option(
        "auto", "--precision",
        help="auto (bf16 where the CPU or GPU computes it natively, else fp32), fp32, bf16 or "
        "fp16 (CUDA only).",
    ),
    force: bool = flag("--force", "-f", help="Overwrite existing outputs."),
    fmt: str | None = typer.Option(
        None, "--format", help="png, jpg or webp (default: the input's, PNG for other formats)."
    ),
    png_level: int = typer.Option(
        PNG_LEVEL, "--png-level",
        help="PNG zlib level 0-9: 1 (default) writes fast, 9 writes ~15% smaller files ~6x slower.",
    ),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels",
        help="Refuse inputs with more pixels (decompression-bomb guard; default Pillow's "
        "limit, about 89 million; 0 disables it).",
    ),
) -> None:
    """Upscale images: writes NAME_x<scale>.<ext> beside each input or under -o.

    Exit status: 0 something written, nothing failed; 1 some file failed (the others were
    still done); 2 bad options, nothing done; 3 nothing written and nothing failed: every
    output already existed (pass --force to overwrite).
    """
    if max_pixels is not None and max_pixels < 0:
        raise ConfigError(f"--max-pixels must be positive (0 disables the limit), got {max_pixels}")
    interactive = is_tty()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not interactive,
    )
    files_task = progress.add_task("images", total=0)
    tiles_task = progress.add_task("tiles", total=0, visible=False)

    def on_plan(jobs: list[Job]) -> None:
        progress.update(files_task, total=len(jobs), completed=0)

    def on_start(job: Job) -> None:
        progress.update(files_task, description=job.source.name)
        progress.update(tiles_task, completed=0, total=0, visible=False)

    def on_tile(done: int, total: int) -> None:
        if total > 1:
            progress.update(tiles_task, completed=done, total=total, visible=True)

    def on_done(outcome: Outcome) -> None:
        progress.advance(files_task)
        if outcome.status == "written":
            console.print(f"{outcome.source} -> {outcome.output}", highlight=False, markup=False)
        elif outcome.status == "skipped":
            print_labelled("skipped: ", "yellow", outcome.message)
        else:
            print_labelled("error: ", "bold red", outcome.message)

    with progress:
        report = upscale_paths(
            inputs, out=output, scale=scale, model=model, weights=weights, force=force, fmt=fmt,
            max_pixels=-1 if max_pixels is None else (max_pixels or None), tile=tile,
            self_ensemble=self_ensemble, device=device, precision=precision, png_level=png_level,
            on_plan=on_plan, on_start=on_start, on_done=on_done, on_tile=on_tile,
        )
    for note in report.notes:
        print_labelled("note: ", "cyan", note)
    written, skipped, failed = (report.count(s) for s in ("written", "skipped", "failed"))
    summary = f"{written} written, {skipped} skipped, {failed} failed"
    err_console.print(summary, highlight=False)
    if report.exit_code:
        raise typer.Exit(report.exit_code)
