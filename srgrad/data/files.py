"""Atomic file writes: a temporary file beside the target, renamed over it when complete;
and the one check that a folder takes new files, made before any work.

A reader (or a parallel worker) sees either the old file or the whole new one, never half a
file; a failed write leaves no temporary file behind. Files get the usual permissions
(0666 less the umask, like `open(path, "w")`), not the 0600 of `tempfile.mkstemp`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from srgrad.errors import DataError, reason

# As tempfile.mkstemp opens its files, less O_RDWR (nothing reads them back through this fd).
_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
          | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))


def _create_temp(path: Path) -> Path:
    """An empty new file `.<name>.<random>.tmp` beside `path` (hidden, so folder walks skip it).

    Created with mode 0666 for the kernel to apply the umask: no os.umask round trip, which
    would change the umask of every thread for a moment.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, _FLAGS, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary file name beside {path}")


@contextmanager
def atomic_path(path: str | Path, *, parents: bool = True) -> Iterator[Path]:
    """Yield a new empty temporary file beside `path`; write it (by path or by opening it),
    and it replaces `path` when the block ends without an exception. On any exception the
    temporary file is removed and the exception propagates. `parents`: create the folder of
    `path` first (else a missing folder is an OSError).

    OSError from creating the folder or the temporary file is raised by the `with` statement
    itself, before the block runs (`with atomic_path(p) as tmp:` leaves `tmp` unbound then).
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, parents: bool = True) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns `path` as a Path."""
    path = Path(path)
    with atomic_path(path, parents=parents) as tmp:
        tmp.write_bytes(data)
    return path


def check_writable_folder(folder: Path, what: str = "output folder", hint: str = "") -> Path:
    """Create `folder` (and its parents) and prove it takes new files, or raise one DataError
    naming it (`what`), the reason and `hint`; return it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        blocking = file_in_the_way(folder)
        problem = (f"{what} {folder} cannot be made: {blocked_by(blocking)}" if blocking
                   else f"{what} {folder} is not writable ({reason(exc)})")
        raise DataError(f"{problem}{hint}") from None
    return folder


def file_in_the_way(folder: Path) -> Path | None:
    """The file (not folder) at `folder` or above it, which stops it being made; None if none."""
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)


def blocked_by(blocking: Path) -> str:
    return f"{blocking} is a file, so no folder can be made under it"

