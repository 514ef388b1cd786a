"""Upscale files and folders: the library behind `srgrad upscale`.

(Not named upscale.py: a submodule `srgrad.upscale` would replace the public function
`srgrad.upscale()` as an attribute of the package as soon as it was imported.)

Naming: `photo.jpg` -> `photo_x2.jpg` beside the input, or under `-o DIR` (created if needed).
Folders are walked recursively and their relative structure is kept under `-o`. With a single
input file, `-o` may name the output file itself (its suffix picks the format). The output keeps
the input's format when it is PNG, JPEG or WebP, and is PNG otherwise, unless `fmt` says.
An `-o` with an image suffix names a file: with several inputs or a folder, or with a suffix
srgrad cannot write (`out.gif`), it is an error, not a folder of that name. So is, for one
input file, an `-o` with any other suffix (`out.txt`) that is not an existing folder. An
existing file is never taken for a folder.

Decisions:
- In folders, files whose name already ends in `_x2`, `_x3` or `_x4` are taken for earlier
  outputs and skipped (so running twice does not make `photo_x2_x2.png`); hidden files and the
  `-o` folder itself are skipped too. Name such a file explicitly to upscale it.
- An existing output is never overwritten without `force`; it is reported as skipped.
- An output is never one of the inputs (`-o photo.png` for photo.png fails, even with `force`).
- An input given twice (or a file and its folder) is upscaled once.
- Every output is written atomically (see data.images.write_image).
- Errors in the model or options stop everything before any file is touched; an error in one
  input (unreadable, too large, unwritable output) fails that file only, and so does a model
  output that is not finite (an overflow can depend on the image).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from torch import nn

from srgrad.data.files import blocked_by, check_writable_folder, file_in_the_way
from srgrad.data.images import (
    IMAGE_SUFFIXES,
    OUTPUT_FORMATS,
    PNG_LEVEL,
    SUFFIX_OF_FORMAT,
    read_image,
    resize_alpha,
    write_image,
)
from srgrad.errors import ConfigError, DataError, WeightsError, reason
from srgrad.inference.forward import super_resolve
from srgrad.inference.loading import load_model, model_scale, resolve_device
from srgrad.inference.tiling import check_tile, tile_overlap
from srgrad.models.precision import resolve_precision

OUTPUT_STEM = re.compile(r"_x[234]$")
KEEP_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Exit statuses of `srgrad upscale` (2, bad options, is SrgradError's).
# Under this many LR pixels on a side, the network's border band (forward.py: borders) is
# most of the output: said, not refused, since the output is still the network's.
SMALL_SIDE = 8
EXIT_FAILED = 1  # some file failed; the others were still processed
EXIT_NOTHING_WRITTEN = 3  # nothing failed, nothing written: every output existed (skipped)


@dataclass
class Job:
    source: Path
    output: Path


@dataclass
class Outcome:
    source: Path
    output: Path | None
    status: str  # "written" | "skipped" | "failed"
    message: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return 0 if self.count("written") else EXIT_NOTHING_WRITTEN


def output_suffix(source: Path, fmt: str | None) -> str:
    if fmt:
        return SUFFIX_OF_FORMAT[OUTPUT_FORMATS[fmt.lower()]]
    suffix = source.suffix.lower()
    return source.suffix if suffix in KEEP_SUFFIXES else ".png"


def output_name(source: Path, scale: int, fmt: str | None = None) -> str:
    return f"{source.stem}_x{scale}{output_suffix(source, fmt)}"


def looks_like_output(path: Path) -> bool:
    return bool(OUTPUT_STEM.search(path.stem))


def _walk(folder: Path, skip: Path | None) -> tuple[list[Path], int]:
    """Image files under `folder` (sorted, hidden and `skip` excluded), and how many were
    left out because they look like srgrad outputs."""
    found, outputs = [], 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if looks_like_output(path):
            outputs += 1
            continue
        found.append(path)
    return found, outputs


def unique_inputs(inputs: Sequence[Path | str]) -> list[Path]:
    """The inputs in order, each file or folder once (however it was spelled)."""
    first: dict[Path, Path] = {}
    for path in map(Path, inputs):
        first.setdefault(path.resolve(), path)
    return list(first.values())


def output_is_file(inputs: Sequence[Path], out: Path | None, fmt: str | None = None) -> bool:
    """Whether `out` names the output file itself (one input file, an image name) rather
    than a folder. ConfigError, before any work, for an `out` that can be neither, or whose
    suffix says another format than `fmt` (the file's bytes would belie its name)."""
    if out is None or out.is_dir():
        return False
    if (blocking := file_in_the_way(out.parent)) is not None:
        raise ConfigError(f"-o {out}: {blocked_by(blocking)}; name another -o")
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        if out.exists():
            raise ConfigError(f"-o {out} is a file, not a folder; name a folder (or, with one "
                              "input file, a .png, .jpg or .webp file)")
        if suffix and len(inputs) == 1 and inputs[0].is_file():
            # `-o out.txt` for one file means a file more likely than a folder named so
            raise ConfigError(f"-o {out}: srgrad cannot write {suffix} images; name a .png, "
                              ".jpg or .webp file, or a folder (a new one without a suffix)")
        return False
    if len(inputs) != 1:
        raise ConfigError(f"-o {out} names an image file, but {len(inputs)} inputs need an "
                          "output folder; name a folder with -o")
    if inputs[0].is_dir():
        raise ConfigError(f"-o {out} names an image file, but the input {inputs[0]} is a "
                          "folder; name a folder with -o")
    if suffix not in KEEP_SUFFIXES:
        raise ConfigError(f"-o {out}: srgrad cannot write {suffix} images; name a .png, .jpg "
                          "or .webp file (or a folder)")
    named = OUTPUT_FORMATS[suffix.lstrip(".")]
    if fmt is not None and OUTPUT_FORMATS[fmt.lower()] != named:
        raise ConfigError(f"-o {out} names a {named} file but --format {fmt} asks for "
                          f"{OUTPUT_FORMATS[fmt.lower()]}; drop --format (the suffix picks the "
                          f"format) or name a {SUFFIX_OF_FORMAT[OUTPUT_FORMATS[fmt.lower()]]} file")
    return True


def plan_jobs(inputs: Sequence[Path], out: Path | None, scale: int, fmt: str | None,
              report: Report) -> list[Job]:
    """Map inputs to outputs; failures (missing input, empty folder, clashes) go to report."""
    single = output_is_file(inputs, out, fmt)
    skip = out.resolve() if out is not None and not single else None
    jobs: list[Job] = []
    for source in inputs:
        if not source.exists():
            message = f"{source}: no such file or folder"
            report.outcomes.append(Outcome(source, None, "failed", message))
        elif source.is_dir():
            files, outputs = _walk(source, skip)
            if outputs:
                report.notes.append(f"{source}: left out {outputs} file(s) named like outputs "
                                    "(*_x2/_x3/_x4); name them explicitly to upscale them")
            if not files:
                report.outcomes.append(Outcome(source, None, "failed", f"{source}: folder has no "
                                               f"images ({', '.join(KEEP_SUFFIXES)}, ...)"))
            base = out if out is not None else source
            for file in files:
                rel = file.relative_to(source).parent
                jobs.append(Job(file, base / rel / output_name(file, scale, fmt)))
        elif single:
            assert out is not None
            jobs.append(Job(source, out))
        else:
            base = out if out is not None else source.parent
            jobs.append(Job(source, base / output_name(source, scale, fmt)))
    return _without_clashes(jobs, report)


def _without_clashes(jobs: list[Job], report: Report) -> list[Job]:
    """Drop repeats of a job (a file given twice, or with its folder) and fail jobs whose
    output is an input or another job's output."""
    sources = {job.source.resolve() for job in jobs}
    seen: dict[Path, Path] = {}
    kept: list[Job] = []
    for job in jobs:
        key, source = job.output.resolve(), job.source.resolve()
        if key in seen and seen[key].resolve() == source:
            continue
        if key in sources:
            problem = "is one of the inputs, which srgrad never overwrites"
        elif key in seen:
            problem = f"is also the output of {seen[key]}"
        else:
            seen[key] = job.source
            kept.append(job)
            continue
        report.outcomes.append(Outcome(job.source, job.output, "failed", f"{job.source}: its "
                                       f"output {job.output} {problem}; use --format or -o"))
    return kept


@dataclass
class Rendered:
    """An upscaled image waiting to be written."""

    job: Job
    pixels: np.ndarray
    alpha: np.ndarray | None
    icc: bytes | None


def render_file(job: Job, model: nn.Module, *, force: bool = False, max_pixels: int | None = -1,
                **options) -> Rendered | Outcome:
    """Read and upscale one file; an Outcome when it is skipped or fails (DataError, or a
    WeightsError for a non-finite output)."""
    if job.output.exists() and not force:
        return Outcome(job.source, job.output, "skipped",
                       f"{job.output} exists (pass --force to overwrite)")
    try:
        picture = read_image(job.source, max_pixels=max_pixels)
    except DataError as exc:
        return Outcome(job.source, job.output, "failed", str(exc))
    try:
        pixels = super_resolve(model, picture.pixels, **options)
    except (DataError, WeightsError) as exc:
        # A non-finite output (WeightsError) fails this file only: an overflow in bf16/fp16
        # can depend on the image, so the model may suit the others; weights broken for
        # every image fail each file, one line each.
        return Outcome(job.source, job.output, "failed", f"{job.source}: {exc}")
    if picture.color_16bit:
        warnings.warn(f"{job.source}: 16 bits per color channel, read as 8 (Pillow has no "
                      "16-bit color mode); the output is 8-bit per channel", stacklevel=2)
    if min(picture.pixels.shape[:2]) < SMALL_SIDE:
        height, width = picture.pixels.shape[:2]
        warnings.warn(f"{job.source}: {width}x{height} pixels; at this size the network's "
                      "borders (about 2 pixels a side, where it sees zero padding) are most "
                      "of the output", stacklevel=2)
    scale = pixels.shape[0] // picture.pixels.shape[0]
    alpha = None if picture.alpha is None else resize_alpha(picture.alpha, scale)
    return Rendered(job, pixels, alpha, picture.icc)


def write_rendered(done: Rendered, fmt: str | None = None, png_level: int = PNG_LEVEL
                   ) -> Outcome:
    job = done.job
    try:
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{job.output}: {_folder_problem(job.output.parent, exc)}; "
                            "name another -o") from None
        write_image(job.output, done.pixels, format=fmt, icc=done.icc, alpha=done.alpha,
                    png_level=png_level)
    except DataError as exc:
        return Outcome(job.source, job.output, "failed", str(exc))
    return Outcome(job.source, job.output, "written")


def _folder_problem(folder: Path, exc: OSError) -> str:
    blocking = file_in_the_way(folder)
    if blocking is not None:
        return blocked_by(blocking)
    return f"cannot create its folder {folder} ({reason(exc)})"


def resolve_model(model: str | None, weights: Path | None, scale: int | None,
                  device: str) -> nn.Module:
    if model is not None and weights is not None:
        raise ConfigError("--model and --weights cannot be used together: --weights already "
                          "names the model (its file records the architecture)")
    return load_model(weights if weights is not None else model, scale=scale, device=device)


def check_output_options(fmt: str | None, png_level: int, max_pixels: int | None) -> None:
    if fmt is not None and fmt.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--format must be png, jpg or webp, got {fmt!r}")
    if not 0 <= png_level <= 9:
        raise ConfigError(f"--png-level must be 0-9 (zlib levels), got {png_level}")
    if max_pixels is not None and max_pixels < -1:
        raise ConfigError(f"--max-pixels must be positive (0 disables the limit), got {max_pixels}")


def _render_all(jobs: list[Job], render: Callable[[Job], Outcome | Rendered],
                write: Callable[[Rendered], Outcome], finish: Callable[[Outcome], None],
                on_start: Callable[[Job], None] | None) -> None:
    """Encoding (PNG: about a quarter of a large image's time) runs in one writer thread while
    the next image is read and upscaled; at most one output waits, which bounds memory."""
    pending: Future[Outcome] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="srgrad-writer") as writer:
        for job in jobs:
            if on_start is not None:
                on_start(job)
            done = render(job)
            if pending is not None:
                finish(pending.result())
                pending = None
            if isinstance(done, Outcome):
                finish(done)
            else:
                pending = writer.submit(write, done)
        if pending is not None:
            finish(pending.result())


def upscale_paths(inputs: Sequence[Path | str], *, out: Path | None = None,
                  scale: int | None = None, model: str | None = None,
                  weights: Path | None = None, force: bool = False, fmt: str | None = None,
                  max_pixels: int | None = -1, tile: int | None = None,
                  png_level: int = PNG_LEVEL,
                  self_ensemble: bool = False, device: str = "auto", precision: str = "auto",
                  on_plan: Callable[[list[Job]], None] | None = None,
                  on_start: Callable[[Job], None] | None = None,
                  on_done: Callable[[Outcome], None] | None = None,
                  on_tile: Callable[[int, int], None] | None = None) -> Report:
    """Upscale every image in `inputs` (files or folders). Option errors raise SrgradError;
    per-file errors are collected in the returned Report."""
    check_output_options(fmt, png_level, max_pixels)
    out = None if out is None else Path(out)
    paths = unique_inputs(inputs)
    single = output_is_file(paths, out, fmt)
    precision = resolve_precision(precision, resolve_device(device))
    net = resolve_model(model, None if weights is None else Path(weights), scale, device)
    check_tile(tile, tile_overlap(net), "--tile")
    report = Report()
    jobs = plan_jobs(paths, out, model_scale(net), fmt, report)
    if out is not None and jobs and not single:
        check_writable_folder(out)

    notify = on_done or (lambda outcome: None)
    for early in report.outcomes:  # missing inputs, empty folders, clashing outputs
        notify(early)

    def finish(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        notify(outcome)

    if on_plan is not None:
        on_plan(jobs)
    render = partial(render_file, model=net, force=force, max_pixels=max_pixels, tile=tile,
                     self_ensemble=self_ensemble, precision=precision, progress=on_tile)
    _render_all(jobs, render, partial(write_rendered, fmt=fmt, png_level=png_level), finish,
                on_start)
    return report
