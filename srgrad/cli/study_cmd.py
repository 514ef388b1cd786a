"""`srgrad study`: run a recipe of variants x seeds (resumably) and report it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from srgrad.cli._common import flag, print_labelled, print_plain, user_errors
from srgrad.console import console

DEFAULT_ROOT = Path.home() / "srgrad-runs"


@user_errors
def study(
    recipe: Path = typer.Argument(
        ..., help=escape("Study recipe (TOML: [study], [train], [variants.*]); see recipes/."),
        show_default=False),
    root: Path = typer.Option(DEFAULT_ROOT, "--root",
                              help="Where run folders go (keep it outside the work tree)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Runs at a time, one thread each."),
    report: Path | None = typer.Option(None, "--report", "-r", show_default=False,
                                       help="Write the markdown table here too."),
    report_only: bool = flag("--report-only",
                             help="Do not train: report the runs as they are (finished runs "
                             "not yet scored on --test-sets are scored first)."),
    test_sets: str | None = typer.Option(
        None, "--test-sets", show_default=False,
        help="Comma-separated test sets (set5, set14, b100, urban100) to score every finished "
        "run's final weights on, once, as soon as the run finishes; the report gains their "
        "table."),
    data_root: Path | None = typer.Option(
        None, "--data-root", show_default=False,
        help="Where the test sets are (default $SRGRAD_DATA, else datasets/)."),
) -> None:
    """Train every variant of a study with every seed, then print the paired comparison
    with seed-only standard errors. Interrupted runs resume where they stopped."""
    from srgrad.data.files import check_writable_folder
    from srgrad.evaluation.report import check_report_path, write_bytes_atomic
    from srgrad.train.study import RunFailed, load_study, run_study, study_table

    plan = load_study(recipe)
    check_writable_folder(root, "--root folder")
    if report is not None:
        check_report_path(report, (".md",))
    sets = [name.strip() for name in (test_sets or "").split(",") if name.strip()]
    images: dict = {}  # decoded test images, shared by every run scored in this command
    if sets:
        from srgrad.train.study_scores import check_sets, score_runs, scores_table

        check_sets(plan, sets, data_root)
    failed = [] if report_only else run_study(
        plan, root, jobs, on_done=_when_done(plan, root, sets, data_root, images),
        on_failed=lambda line: print_labelled("failed: ", "red", line))
    text = study_table(plan, root)
    if sets:
        score_runs(plan, root, sets, data_root, images, on_scored=_say_scored)
        text += "\n\n" + scores_table(plan, root, sets)
    text += f"\n\nRecipe: `{recipe}`; run folders: `{root}`.\n"
    print_plain(text, console)
    if report is not None:
        write_bytes_atomic(report, text.encode())
    if failed:
        raise RunFailed(f"{len(failed)} run(s) failed (the failed: lines above); the report "
                        "covers the others; fix the cause and run the same command again")


def _say_scored(variant: str, seed: int) -> None:
    print_plain(f"scored: {variant} seed {seed}")


def _when_done(plan, root: Path, sets: list[str], data_root: Path | None, images: dict):
    """After each run: say so and, with --test-sets, score it at once (a session that ends
    before the study does keeps the scores of the runs it finished)."""
    from srgrad.train.study import run_folder

    def done(variant: str, seed: int) -> None:
        print_plain(f"done: {variant} seed {seed}")
        if sets:
            from srgrad.train.study_scores import score_run

            if score_run(run_folder(root, plan, variant, seed), sets, data_root, images):
                _say_scored(variant, seed)
    return done
