"""`srgrad study`: run a recipe of variants x seeds (resumably) and report it."""

from __future__ import annotations

from pathlib import Path

import typer

from srgrad.cli._common import flag, print_plain, user_errors
from srgrad.console import console

DEFAULT_ROOT = Path.home() / "srgrad-runs"


@user_errors
def study(
    recipe: Path = typer.Argument(..., help="Study recipe (TOML: [study], [train], "
                                  "[variants.*]); see recipes/.", show_default=False),
    root: Path = typer.Option(DEFAULT_ROOT, "--root",
                              help="Where run folders go (keep it outside the work tree)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs at a time, one thread each."),
    report: Path | None = typer.Option(None, "--report", "-r", show_default=False,
                                       help="Write the markdown table here too."),
    report_only: bool = flag("--report-only",
                                     help="Do not train: report the runs as they are."),
) -> None:
    """Train every variant of a study with every seed, then print the paired comparison
    with seed-only standard errors. Interrupted runs resume where they stopped."""
    from srgrad.train.study import load_study, run_study, study_table

    plan = load_study(recipe)
    if not report_only:
        run_study(plan, root, jobs, on_done=lambda v, s: print_plain(f"done: {v} seed {s}"))
    text = study_table(plan, root) + f"\n\nRecipe: `{recipe}`; run folders: `{root}`.\n"
    print_plain(text, console)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text)
