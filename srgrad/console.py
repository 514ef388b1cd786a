"""What srgrad shows a person: the two consoles and one progress style (rich's), used by the
CLI and by the library layers that run long (training, downloads)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console()
err_console = Console(stderr=True)


def is_tty() -> bool:
    return sys.stderr.isatty()


def count_columns() -> list[ProgressColumn]:
    """What done, of how many, for how long: the columns of a progress bar over items."""
    return [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn()]


def progress_bar(*columns: ProgressColumn, show: bool = True) -> Progress:
    """A progress display on stderr (count_columns() unless given), shown only on a terminal
    and only if `show`, gone when done: logs and pipes get the command's own lines instead."""
    return Progress(*(columns or count_columns()), console=err_console, transient=True,
                    disable=not (show and is_tty()))
