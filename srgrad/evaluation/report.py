"""Tables and report files of an evaluation (`srgrad eval`): rich, Markdown, CSV and JSON.

Every table puts the published reference numbers of conventions.md (`REFERENCES`) beside the
measured ones, with each model's PSNR difference from the published bicubic number.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from srgrad.data.files import atomic_write_bytes, check_writable_folder
from srgrad.errors import ConfigError, DataError, reason
from srgrad.evaluation.run import EvalRun, data_source
from srgrad.metrics import CONVENTIONS

Score = tuple[float, float]  # PSNR dB, SSIM

REFERENCE_SOURCE = (
    "EDSR paper (arXiv 1707.02921) Table 3 for bicubic and EDSR; EDSR-baseline x2/x4 "
    "as cited in later papers, x3 from the official weights re-scored by torchSR "
    "(Y channel, shave = scale)"
)
_SETS = ("set5", "set14", "b100", "urban100")


def _row(*scores: Score) -> dict[str, Score]:
    return dict(zip(_SETS, scores, strict=True))


# scale -> method -> data set -> (PSNR, SSIM), the paper convention ("y") only.
REFERENCES: dict[int, dict[str, dict[str, Score]]] = {
    2: {
        "bicubic": _row((33.66, .9299), (30.24, .8688), (29.56, .8431), (26.88, .8403)),
        "EDSR-baseline": _row((37.99, .9604), (33.57, .9175), (32.16, .8994), (31.98, .9272)),
        "EDSR": _row((38.11, .9601), (33.92, .9195), (32.32, .9013), (32.93, .9351)),
    },
    3: {
        "bicubic": _row((30.39, .8682), (27.55, .7742), (27.21, .7385), (24.46, .7349)),
        "EDSR-baseline": _row((34.37, .9270), (30.28, .8414), (29.08, .8051), (28.15, .8520)),
        "EDSR": _row((34.65, .9282), (30.52, .8462), (29.25, .8093), (28.80, .8653)),
    },
    4: {
        "bicubic": _row((28.42, .8104), (26.00, .7027), (25.96, .6675), (23.14, .6577)),
        "EDSR-baseline": _row((32.09, .8938), (28.58, .7813), (27.57, .7357), (26.04, .7849)),
        "EDSR": _row((32.46, .8968), (28.80, .7876), (27.71, .7420), (26.64, .8033)),
    },
}
REPORT_FORMATS = (".json", ".md", ".csv")


def reference(method: str, dataset: str, scale: int, convention: str = "y") -> Score | None:
    """A published (PSNR, SSIM), or None when there is none for this convention/set/scale."""
    if convention != "y":
        return None
    return REFERENCES.get(scale, {}).get(method, {}).get(dataset)


def fmt_score(psnr: float, ssim: float) -> str:
    ssim_text = f"{ssim:.4f}"
    return f"{psnr:.2f} / {ssim_text[1:] if ssim_text.startswith('0') else ssim_text}"


def _delta(psnr: float, dataset: str, scale: int, convention: str) -> str:
    ref = reference("bicubic", dataset, scale, convention)
    return "–" if ref is None or not math.isfinite(psnr) else f"{psnr - ref[0]:+.2f}"


def summary_table(run: EvalRun, scale: int) -> tuple[list[str], list[list[str]]]:
    """Header and rows for one scale: data sets down, models (and references) across."""
    labels = [m.label for m in run.models if m.scale in (None, scale)]
    refs = list(REFERENCES[scale]) if run.convention == "y" else []
    header = ["data set"]
    for label in labels:
        header += [f"{label} PSNR / SSIM", f"{label} Δ"]
    header += [f"{name} (paper)" for name in refs]
    found = {(r.model, r.dataset): r for r in run.results if r.scale == scale}
    rows = []
    for data in run.datasets:
        row = [data.label]
        for label in labels:
            r = found.get((label, data.key))
            row += ["–", "–"] if r is None else [
                fmt_score(r.psnr, r.ssim), _delta(r.psnr, data.key, scale, run.convention)]
        for name in refs:
            ref = reference(name, data.key, scale)
            row.append("–" if ref is None else fmt_score(*ref))
        rows.append(row)
    return header, rows


def delta_note(convention: str) -> str:
    if convention != "y":
        return (f"Convention {convention!r}: the published numbers use the Y channel, so no "
                "references or differences are shown.")
    return ("Δ = measured PSNR minus the published bicubic PSNR (for bicubic itself: the "
            f"pipeline check, ideally within ±0.03). Published references: {REFERENCE_SOURCE}.")


def _print_unwrapped(console: Console, table: Table) -> None:
    """On a terminal as rich fits it; into a file or pipe (80 columns assumed) at full width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    try:
        wide = console.options.update(max_width=1000)
        console.width = max(width, Measurement.get(console, wide, table).maximum)
        console.print(table)
    finally:
        console.width = width


def source_lines(run: EvalRun) -> list[str]:
    """What each data set scored at each scale: how many images, from where."""
    lines = []
    for data in run.datasets:
        for scale in run.scales:
            src = data_source(data.pairs[scale])
            given, n = src["lr_given"], src["images"]
            lr = ("LR made from the HR by MATLAB bicubic" if not given else
                  f"LR from {src['lr']}" if given == n else
                  f"LR from {src['lr']} for {given}, made by MATLAB bicubic for {n - given}")
            lines.append(f"{data.label} x{scale}: {n} image{'s' * (n != 1)}, "
                         f"HR from {src['hr']}; {lr}")
    return lines


def print_tables(run: EvalRun, console: Console) -> None:
    """One rich table per scale, the data each scored, then the note on differences and
    sources."""
    for scale in run.scales:
        header, rows = summary_table(run, scale)
        table = Table(title=f"x{scale}, convention {run.convention}: "
                      f"{CONVENTIONS[run.convention]}", title_justify="left")
        for i, name in enumerate(header):
            paper = name.endswith("(paper)")
            name = name.replace(" PSNR / SSIM", "\nPSNR / SSIM").replace(" (paper)", "\n(paper)")
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True,
                             style="dim" if paper else None)
        for row in rows:
            table.add_row(*row)
        _print_unwrapped(console, table)
    for line in source_lines(run):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(delta_note(run.convention), highlight=False, soft_wrap=True)


def machine_info(device: str) -> dict[str, Any]:
    import torch

    from srgrad.models.precision import cpu_description

    info: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "cpu": cpu_description(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _num(x: float, digits: int) -> float | None:
    return round(x, digits) if math.isfinite(x) else None  # JSON has no inf (identical images)


def report_dict(run: EvalRun, command: str, elapsed_s: float | None = None) -> dict[str, Any]:
    from srgrad import __version__

    return {
        "srgrad_version": __version__,
        "command": command,
        "machine": machine_info(run.device),
        "elapsed_s": None if elapsed_s is None else round(elapsed_s, 1),
        "convention": {"name": run.convention, "description": CONVENTIONS[run.convention]},
        "precision": run.precision,
        "scales": run.scales,
        "self_ensemble": run.self_ensemble,
        "models": [{"model": m.label, "source": m.source or "built-in MATLAB bicubic"}
                   for m in run.models],
        "datasets": {d.key: d.label for d in run.datasets},
        "sources": [{"dataset": d.key, "scale": s, **data_source(d.pairs[s])}
                    for d in run.datasets for s in run.scales],
        "results": [{"model": r.model, "dataset": r.dataset, "scale": r.scale,
                     "psnr": _num(r.psnr, 4), "ssim": _num(r.ssim, 5), "images": r.images}
                    for r in run.results],
        "per_image": [{"model": r.model, "dataset": r.dataset, "scale": r.scale,
                       "image": r.image, "psnr": _num(r.psnr, 4), "ssim": _num(r.ssim, 5)}
                      for r in run.per_image],
        "references": {"source": REFERENCE_SOURCE, "values": {
            f"x{s}": {m: {d: list(v) for d, v in sets.items()} for m, sets in by.items()}
            for s, by in REFERENCES.items() if s in run.scales}} if run.convention == "y" else None,
    }


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown_report(run: EvalRun, command: str, elapsed_s: float | None = None) -> str:
    meta = report_dict(run, command, elapsed_s)
    machine = ", ".join(f"{k} {v}" for k, v in meta["machine"].items())
    lines = ["# srgrad eval", "",
             f"- command: `{command}`", f"- srgrad {meta['srgrad_version']}; {machine}",
             f"- convention `{run.convention}`: {CONVENTIONS[run.convention]}",
             f"- precision: {run.precision}"]
    if elapsed_s is not None:
        lines.append(f"- wall time: {elapsed_s:.0f} s")
    for scale in run.scales:
        lines += ["", f"## x{scale}", "", *_md_table(*summary_table(run, scale))]
    lines += ["", "## Data", "", *(f"- {line}" for line in source_lines(run))]
    lines += ["", delta_note(run.convention)]
    labels = [m.label for m in run.models]
    per = {(r.model, r.dataset, r.scale, r.image): r for r in run.per_image}
    for scale in run.scales:
        lines += ["", f"## Per image, x{scale} (PSNR / SSIM)", ""]
        rows = []
        for data in run.datasets:
            for pair in data.pairs[scale]:
                cells = [per.get((m, data.key, scale, pair.name)) for m in labels]
                rows.append([data.label, pair.name] + [
                    "–" if c is None else fmt_score(c.psnr, c.ssim) for c in cells])
        lines += _md_table(["data set", "image", *labels], rows)
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("row", "model", "dataset", "scale", "image", "psnr", "ssim", "images")


def csv_report(run: EvalRun) -> str:
    """One table: a `mean` row per model/data set/scale, then an `image` row per image."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in run.results:
        writer.writerow({"row": "mean", "model": r.model, "dataset": r.dataset, "scale": r.scale,
                         "image": "", "psnr": f"{r.psnr:.4f}", "ssim": f"{r.ssim:.5f}",
                         "images": r.images})
    for p in run.per_image:
        writer.writerow({"row": "image", "model": p.model, "dataset": p.dataset, "scale": p.scale,
                         "image": p.image, "psnr": f"{p.psnr:.4f}", "ssim": f"{p.ssim:.5f}",
                         "images": 1})
    return out.getvalue()


def check_report_path(path: Path, formats: tuple[str, ...] = REPORT_FORMATS) -> None:
    """One of `formats`, and a folder that exists (it is created) and takes new files: checked
    before any work, so an unwritable report is not found after the whole computation."""
    if path.suffix.lower() not in formats:
        raise ConfigError(f"--report {path}: unknown format {path.suffix or '(no extension)'!r}; "
                          f"use {', '.join(formats)}")
    if path.is_dir():
        raise DataError(f"--report {path} is a folder; name a {path.suffix} file")
    try:
        check_writable_folder(path.parent)
    except DataError as exc:
        raise DataError(f"--report {path}: {exc}") from None


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary file beside `path` and rename it into place."""
    try:
        return atomic_write_bytes(path, data)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({reason(exc)})") from None


def write_report(path: Path, run: EvalRun, command: str, elapsed_s: float | None = None) -> Path:
    """The report in the format its extension names (.json, .md or .csv)."""
    check_report_path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(report_dict(run, command, elapsed_s), indent=1, allow_nan=False) + "\n"
    elif suffix == ".md":
        text = markdown_report(run, command, elapsed_s)
    else:
        text = csv_report(run)
    return write_bytes_atomic(path, text.encode())
