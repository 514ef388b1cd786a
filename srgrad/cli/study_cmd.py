"""`srgrad study`: run a recipe of variants x seeds (resumably) and report it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from srgrad.cli._common import flag, print_plain, user_errors
from srgrad.console import console

DEFAULT_ROOT = Path.home() / "srgrad-runs"


@user_errors
def study(
    recipe: Path = typer.Argument(
        ..., help=escape("Study recipe (TOML: [study], [train], [variants.*]); see recipes/."),
        show_default=False),
    root: Path = typer.Option(DEFAULT_ROOT, "--root",
                              help="Where run folders go (keep it outside the work tree)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs at a time, one thread each."),
    report: Path | None = typer.Option(None, "--report", "-r", show_default=False,
                                       help="Write the markdown table here too."),
    report_only: bool = flag("--report-only",
                             help="Do not train: report the runs as they are."),
    test_sets: str | None = typer.Option(
        None, "--test-sets", show_default=False,
        help="Comma-separated test sets (set5, set14, b100, urban100) to score every finished "
        "run's final weights on, once, after training; the report gains their table."),
    data_root: Path | None = typer.Option(
        None, "--data-root", show_default=False,
        help="Where the test sets are (default $SRGRAD_DATA, else datasets/)."),
) -> None:
    """Train every variant of a study with every seed, then print the paired comparison
    with seed-only standard errors. Interrupted runs resume where they stopped."""
    from srgrad.train.study import load_study, run_study, study_table

    plan = load_study(recipe)
    if not report_only:
        run_study(plan, root, jobs, on_done=lambda v, s: print_plain(f"done: {v} seed {s}"))
    text = study_table(plan, root)
    if test_sets:
        from srgrad.train.study_scores import score_runs, scores_table

        sets = [name.strip() for name in test_sets.split(",") if name.strip()]
        score_runs(plan, root, sets, data_root,
                   on_scored=lambda v, s: print_plain(f"scored: {v} seed {s}"))
        text += "\n\n" + scores_table(plan, root, sets)
    text += f"\n\nRecipe: `{recipe}`; run folders: `{root}`.\n"
    print_plain(text, console)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text)
