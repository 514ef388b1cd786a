"""`srgrad experiment ...`: reproductions of the paper's studies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from srgrad.cli._common import (
    Command,
    Group,
    flag,
    parse_int_list,
    parse_name_list,
    user_errors,
)
from srgrad.console import console
from srgrad.errors import ConfigError
from srgrad.experiments.sin import QUICK, VARIANTS, SinConfig, default_workers, run_sin

app = typer.Typer(
    cls=Group,
    help="Reproduce the paper's experiments (results, figures and a summary in one folder).",
    no_args_is_help=True,
)


@app.command("sin", cls=Command)
@user_errors
def sin(
    frequencies: str | None = typer.Option(
        None, help="Comma-separated d for y = sin(d x) on [-pi, pi] (default 1,4,8,16)."
    ),
    seeds: int | None = typer.Option(None, help="Number of seeds (0 .. N-1) (default 30)."),
    epochs: int | None = typer.Option(None, help="Training epochs per run (default 400)."),
    out: Path = typer.Option(Path("runs/sin"), help="Output folder."),
    quick: bool = flag(
        "--quick", help="Small run (d=4,16, 3 seeds, 60 epochs) that writes every output."
    ),
    workers: int | None = typer.Option(
        None, help="Worker processes, one torch thread each (default min(2, CPUs))."
    ),
    variants: str | None = typer.Option(
        None, help=f"Comma-separated subset of: {', '.join(VARIANTS)} (default all)."
    ),
    magnitude: str = typer.Option("unit", help="N(g) size: unit (g/|g|) or input (g/|g|*|x|)."),
    eval_every: int | None = typer.Option(
        None, help="Epochs between test evaluations (default 10)."
    ),
) -> None:
    """Fit y = sin(d x) with residual MLPs of every skip variant; write CSVs, PNGs, summary.md."""
    cfg = replace(SinConfig(), **QUICK) if quick else SinConfig()  # type: ignore[arg-type]
    changes: dict[str, object] = {"magnitude": magnitude, "workers": default_workers()}
    if frequencies is not None:
        changes["frequencies"] = tuple(parse_int_list(frequencies, "--frequencies"))
    if variants is not None:
        names = tuple(parse_name_list(variants))
        if not names:
            raise ConfigError("--variants is empty")
        changes["variants"] = names
    for key, value in (
        ("seeds", seeds),
        ("epochs", epochs),
        ("workers", workers),
        ("eval_every", eval_every),
    ):
        if value is not None:
            changes[key] = value
    cfg = replace(cfg, **changes)  # type: ignore[arg-type]
    cfg.validate()
    runs = len(cfg.frequencies) * cfg.seeds * len(cfg.variants)
    console.print(
        f"sin study: d={','.join(map(str, cfg.frequencies))}, {cfg.seeds} seeds, "
        f"{len(cfg.variants)} variants, {cfg.epochs} epochs ({runs} runs, "
        f"{cfg.workers} worker(s)) -> {out}"
    )
    result = run_sin(cfg, out, progress=lambda line: console.print(line, highlight=False))
    console.print(f"done in {result.elapsed_s:.0f}s: {result.n_rows} result rows")
    for path in result.files:
        console.print(f"  {path}", highlight=False)
