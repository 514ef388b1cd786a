"""`srgrad download`: fetch, verify and install DIV2K and the benchmark sets."""

from pathlib import Path
from typing import Annotated

import typer

from srgrad.cli._common import parse_int_list, print_plain, user_errors
from srgrad.console import console, err_console
from srgrad.data.datasets import resolve_root
from srgrad.data.download import install, select_sources
from srgrad.data.selfexsr import import_selfexsr
from srgrad.errors import ConfigError


@user_errors
def download(
    dataset: Annotated[str, typer.Argument(
        help="What to fetch: div2k, benchmark or all.", metavar="div2k|benchmark|all",
        show_default=False)],
    scales: Annotated[str, typer.Option(
        "--scales", help="LR scales, comma-separated.", metavar="2,3,4")] = "2,3,4",
    root: Annotated[Path | None, typer.Option(
        "--root", help="Data folder (default: $SRGRAD_DATA, else datasets/).", metavar="DIR",
        show_default=False)] = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", help="Mirror base URL: replaces scheme and host (plus this path prefix) of "
        "each official URL.", metavar="URL", show_default=False)] = None,
    from_files: Annotated[list[Path] | None, typer.Option(
        "--from", help="Import an archive already on disk instead of downloading it "
        "(matched by file name, md5-checked; repeatable), or, for benchmark, a folder: a "
        "jbhuang0604/SelfExSR checkout or its data/ folder.", metavar="PATH",
        show_default=False)] = None,
    keep_archives: Annotated[bool, typer.Option(
        "--keep-archives", metavar="",
        help="Keep the downloaded archives in <root>/.downloads.")] = False,
) -> None:
    """Download, verify (md5) and install DIV2K and/or Set5, Set14, B100, Urban100.

    Interrupted downloads resume on the next run; datasets already installed are skipped.
    """
    scale_list = parse_int_list(scales, "--scales", allowed={2, 3, 4})
    where = resolve_root(root)
    paths = [p.expanduser() for p in from_files or ()]
    folders = [p for p in paths if p.is_dir()]
    if folders:
        select_sources(dataset, scale_list)  # an unknown dataset name is reported first
        if dataset.strip().lower() not in ("benchmark", "all") or len(folders) > 1:
            raise ConfigError("--from FOLDER imports the benchmark sets from one SelfExSR "
                              "checkout: use `srgrad download benchmark --from FOLDER`")
        if any(p.name == "benchmark.tar" for p in paths):
            raise ConfigError("--from: give either benchmark.tar or a SelfExSR folder, not both")
        reports = import_selfexsr(folders[0], where, scale_list, log=print_plain)
        imported = sum(r.status == "imported" for r in reports)
        console.print(f"done: {imported} set(s) imported, {len(reports) - imported} already "
                      f"present in {where / 'benchmark'}", markup=False, highlight=False)
        paths = [p for p in paths if not p.is_dir()]
        if not paths:
            return
    outcomes = install(dataset, scale_list, where, mirror=mirror, from_files=paths,
                       keep_archives=keep_archives, progress=err_console.is_terminal,
                       log=print_plain)
    installed = sum(o.status == "installed" for o in outcomes)
    present = len(outcomes) - installed
    console.print(f"done: {installed} archive(s) installed, {present} already present in "
                  f"{where}", markup=False, highlight=False)
