"""Safe extraction of dataset archives (zip and tar).

Every member name is checked before anything is written: absolute paths, ``..`` components,
drive letters, links and special files make the whole archive refused. Only the wanted
folders are extracted, file by file, into a staging folder on the same filesystem as the
destination; each folder is then renamed into place, so an interrupted run never leaves a
half-installed folder behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from srgrad.errors import DataError, reason

CHUNK = 1 << 20


class ArchiveError(DataError):
    """The archive itself is unusable (unsafe member, damaged, wrong content)."""


@dataclass(frozen=True)
class Member:
    """One archive entry, already checked to be a safe relative path."""

    path: PurePosixPath
    size: int
    is_dir: bool
    handle: object  # ZipInfo or TarInfo, used to open the entry


def _safe_path(name: str, archive: str) -> PurePosixPath:
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if clean.startswith("/") or (parts and len(parts[0]) >= 2 and parts[0][1] == ":"):
        raise ArchiveError(f"refusing to extract {archive}: member {name!r} has an absolute path")
    if ".." in parts:
        raise ArchiveError(f"refusing to extract {archive}: member {name!r} points outside the "
                        "archive ('..')")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def _zip_members(zf: zipfile.ZipFile, archive: str) -> list[Member]:
    members = []
    for info in zf.infolist():
        path = _safe_path(info.filename, archive)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
            raise ArchiveError(f"refusing to extract {archive}: member {info.filename!r} is {what}")
        members.append(Member(path, info.file_size, info.is_dir(), info))
    return members


def _tar_members(tf: tarfile.TarFile, archive: str) -> list[Member]:
    members = []
    for info in tf.getmembers():
        path = _safe_path(info.name, archive)
        if info.issym() or info.islnk():
            raise ArchiveError(f"refusing to extract {archive}: member {info.name!r} is a link")
        if not (info.isreg() or info.isdir()):
            raise ArchiveError(f"refusing to extract {archive}: member {info.name!r} is a "
                            "device, fifo or other special file")
        members.append(Member(path, info.size, info.isdir(), info))
    return members


@contextmanager
def open_archive(archive: Path, kind: str) -> Iterator[tuple[list[Member], object]]:
    """Open ``archive`` (kind ``zip`` or ``tar``) and list its checked members."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                yield _zip_members(zf, archive.name), zf
        elif kind == "tar":
            with tarfile.open(archive, "r:*") as tf:
                yield _tar_members(tf, archive.name), tf
        else:
            raise ValueError(f"unknown archive kind {kind!r}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive.name} is not a readable {kind} archive ({exc}); delete it "
                        "and download it again") from None


def open_member(handle: object, opener: object) -> IO[bytes]:
    if isinstance(opener, zipfile.ZipFile):
        return opener.open(handle)  # type: ignore[arg-type]
    stream = opener.extractfile(handle)  # type: ignore[attr-defined]
    if stream is None:
        raise ArchiveError(f"cannot read archive member {handle}")
    return stream


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def count_files(folder: Path) -> int:
    """Number of regular, non-hidden files directly inside ``folder`` (0 if missing)."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _under(path: PurePosixPath, folder: PurePosixPath) -> bool:
    return path.parts[: len(folder.parts)] == folder.parts and path != folder


def extract_folders(archive: Path, kind: str, folders: Mapping[str, int], dest: Path,
                    staging_parent: Path) -> list[Path]:
    """Extract the files of ``folders`` (archive path -> minimum file count) into ``dest``.

    Files are written under a fresh folder in ``staging_parent`` (same filesystem as ``dest``),
    each folder's count is checked, then each folder is renamed to ``dest/<folder>``, replacing
    any older copy. Returns the installed folders. Raises DataError for unsafe or incomplete
    archives and a full disk; nothing is installed in those cases.
    """
    wanted = {PurePosixPath(f): n for f, n in folders.items()}
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="extract-", dir=staging_parent))
    try:
        _copy_members(archive, kind, wanted, staging, dest)
        for folder, expected in wanted.items():
            found = count_files(staging.joinpath(*folder.parts))
            if found < expected:
                raise ArchiveError(f"{archive.name} holds {found} files in {folder}, expected "
                                   f"{expected}; the archive is not the expected one")
        return [_move_into_place(staging, folder, dest) for folder in wanted]
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(f"disk full while extracting {archive.name} under {dest}; free "
                            "some space and run the command again") from None
        raise DataError(f"could not extract {archive.name} into {dest}: {reason(exc)}"
                        ) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive.name} is damaged ({exc}); delete it and download it "
                           "again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_members(archive: Path, kind: str, wanted: Mapping[PurePosixPath, int],
                  staging: Path, dest: Path) -> None:
    """Copy the files under the wanted folders into `staging`, after checking that they fit
    on the disk; refuses a member whose path leaves `staging`."""
    with open_archive(archive, kind) as (members, opener):
        picked = [m for m in members if not m.is_dir and any(_under(m.path, w) for w in wanted)]
        need = sum(m.size for m in picked)
        free = shutil.disk_usage(staging).free
        if need > free:
            raise DataError(f"not enough disk space to extract {archive.name}: needs "
                            f"{need / 1e6:.0f} MB, {free / 1e6:.0f} MB free under {dest}")
        for m in picked:
            target = staging.joinpath(*m.path.parts)
            if not target.resolve().is_relative_to(staging.resolve()):
                raise ArchiveError(f"refusing to extract {archive.name}: member {m.path} "
                                   "escapes the destination")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_member(m.handle, opener) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)


def _move_into_place(staging: Path, folder: PurePosixPath, dest: Path) -> Path:
    src = staging.joinpath(*folder.parts)
    final = dest.joinpath(*folder.parts)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() or final.is_symlink():
        # Move the old copy aside first (a rename cannot replace a non-empty folder).
        os.rename(final, staging / f".old-{len(list(staging.iterdir()))}")
    os.rename(src, final)
    return final
