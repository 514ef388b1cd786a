"""`srgrad upscale`: upscale images and folders with a shipped or trained model.

Exit codes: in the command's docstring, which is its --help (values: inference/files.py EXIT_*).
"""

from __future__ import annotations

from pathlib import Path

import typer

from srgrad.cli._common import (
    DeviceOption,
    ModelOption,
    ScaleOption,
    SelfEnsembleOption,
    TileOption,
    WeightsOption,
    flag,
    print_labelled,
    user_errors,
)
from srgrad.console import console, err_console, progress_bar
from srgrad.data.images import PNG_LEVEL
from srgrad.errors import ConfigError
from srgrad.inference.files import Job, Outcome, Report, upscale_paths
from srgrad.models.precision import PRECISION_HELP


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
    tile: TileOption = None,
    self_ensemble: SelfEnsembleOption = False,
    device: DeviceOption = "auto",
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP + "."),
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
    with _UpscaleProgress() as shown:
        report = upscale_paths(
            inputs, out=output, scale=scale, model=model, weights=weights, force=force, fmt=fmt,
            max_pixels=-1 if max_pixels is None else (max_pixels or None), tile=tile,
            self_ensemble=self_ensemble, device=device, precision=precision, png_level=png_level,
            on_plan=shown.on_plan, on_start=shown.on_start, on_done=shown.on_done,
            on_tile=shown.on_tile,
        )
    _summarize(report)


class _UpscaleProgress:
    """Images and the current image's tiles as two bars; each outcome as one line."""

    def __init__(self) -> None:
        self.progress = progress_bar()
        self.files = self.progress.add_task("images", total=0)
        self.tiles = self.progress.add_task("tiles", total=0, visible=False)

    def __enter__(self) -> _UpscaleProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def on_plan(self, jobs: list[Job]) -> None:
        self.progress.update(self.files, total=len(jobs), completed=0)

    def on_start(self, job: Job) -> None:
        self.progress.update(self.files, description=job.source.name)
        self.progress.update(self.tiles, completed=0, total=0, visible=False)

    def on_tile(self, done: int, total: int) -> None:
        if total > 1:
            self.progress.update(self.tiles, completed=done, total=total, visible=True)

    def on_done(self, outcome: Outcome) -> None:
        self.progress.advance(self.files)
        if outcome.status == "written":
            console.print(f"{outcome.source} -> {outcome.output}", highlight=False, markup=False)
        elif outcome.status == "skipped":
            print_labelled("skipped: ", "yellow", outcome.message)
        else:
            print_labelled("error: ", "bold red", outcome.message)


def _summarize(report: Report) -> None:
    """The notes, one count line, and the exit status of the run."""
    for note in report.notes:
        print_labelled("note: ", "cyan", note)
    written, skipped, failed = (report.count(s) for s in ("written", "skipped", "failed"))
    err_console.print(f"{written} written, {skipped} skipped, {failed} failed", highlight=False)
    if report.exit_code:
        raise typer.Exit(report.exit_code)
