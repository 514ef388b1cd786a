"""Download, verify and install DIV2K and the SR benchmark sets (Set5, Set14, B100, Urban100).

Archives stream to ``<root>/.downloads/<file>.part`` (resumed with an HTTP Range request),
are checked against the official md5 before anything is extracted, and are unpacked safely
(see :mod:`srgrad.data.archive`). An archive given with ``--from`` whose md5 differs (a
repacked copy) is accepted with a note when its folders hold the expected file counts and
every file in them decodes as an image. A folder given with ``--from`` is a SelfExSR checkout
(see :mod:`srgrad.data.selfexsr`). A dataset already complete is skipped without any network
access.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from PIL import Image, UnidentifiedImageError

from srgrad.data.archive import (
    ArchiveError,
    count_files,
    extract_folders,
    file_md5,
    open_archive,
    open_member,
)
from srgrad.data.datasets import DATA_ENV, resolve_root
from srgrad.data.files import check_writable_folder
from srgrad.data.transfer import Interrupted, stream
from srgrad.errors import ConfigError, DataError

DATASETS = ("div2k", "benchmark")


@dataclass(frozen=True)
class Folder:
    """A folder an archive installs (path inside the archive) and its expected file count."""

    path: str
    count: int
    scale: int | None = None  # None: always needed; else only when this scale is asked


@dataclass(frozen=True)
class Source:
    """One official archive: where it lives, its md5, and what a complete install holds."""

    name: str
    url: str
    md5: str
    kind: str  # "zip" or "tar"
    dataset: str = "div2k"
    dest: str = ""  # folder under the root that the archive's paths are relative to
    folders: tuple[Folder, ...] = ()
    scale: int | None = None  # an LR archive of one scale; None: needed for every scale

    @property
    def filename(self) -> str:
        return Path(urlsplit(self.url).path).name

    def wanted(self, scales: Sequence[int]) -> dict[str, int]:
        """Archive folder -> expected file count, for the scales asked."""
        return {f.path: f.count for f in self.folders if f.scale is None or f.scale in scales}

    def is_complete(self, root: Path, scales: Sequence[int]) -> bool:
        base = root / self.dest
        return all(count_files(base / p) >= n for p, n in self.wanted(scales).items())


def _div2k(split: str, md5: str, scale: int | None = None) -> Source:
    count = 800 if split == "train" else 100
    name = f"DIV2K_{split}_HR" if scale is None else f"DIV2K_{split}_LR_bicubic_X{scale}"
    folder = f"DIV2K_{split}_HR" if scale is None else f"DIV2K_{split}_LR_bicubic/X{scale}"
    return Source(name, f"http://data.vision.ee.ethz.ch/cvl/DIV2K/{name}.zip", md5, "zip",
                  "div2k", "DIV2K", (Folder(folder, count),), scale)


BENCHMARK_SETS = {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 100}

SOURCES: tuple[Source, ...] = (
    _div2k("train", "bdc2d9338d4e574fe81bf7d158758658"),
    _div2k("train", "9a637d2ef4db0d0a81182be37fb00692", 2),
    _div2k("train", "ad80b9fe40c049a07a8a6c51bfab3b6d", 3),
    _div2k("train", "76c43ec4155851901ebbe8339846d93d", 4),
    _div2k("valid", "9fcdda83005c5e5997799b69f955ff88"),
    _div2k("valid", "1512c9a3f7bde2a1a21a73044e46b9cb", 2),
    _div2k("valid", "18b1d310f9f88c13618c287927b29898", 3),
    _div2k("valid", "21962de700c8d368c6ff83314480eff0", 4),
    Source("benchmark", "https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
           "4ace41d33c2384b97e6b320cd0afd6ba", "tar", "benchmark", "",
           tuple(f for name, n in BENCHMARK_SETS.items()
                 for f in [Folder(f"benchmark/{name}/HR", n)]
                 + [Folder(f"benchmark/{name}/LR_bicubic/X{s}", n, s) for s in (2, 3, 4)])),
)


@dataclass
class Outcome:
    source: Source
    status: str  # "present" or "installed"
    folders: list[Path]


def select_sources(which: str, scales: Sequence[int],
                   sources: Sequence[Source] | None = None) -> list[Source]:
    which = which.strip().lower()
    if which not in (*DATASETS, "all"):
        raise ConfigError(f"unknown dataset {which!r}: choose div2k, benchmark or all")
    names = DATASETS if which == "all" else (which,)
    table = SOURCES if sources is None else sources
    return [s for s in table if s.dataset in names and (s.scale is None or s.scale in scales)]


def mirror_url(url: str, mirror: str | None) -> str:
    """Replace scheme and host of ``url`` by the mirror's, prefixing the mirror's path."""
    if not mirror:
        return url
    m = urlsplit(mirror)
    if m.scheme not in ("http", "https") or not m.netloc:
        raise ConfigError(f"--mirror must be an http(s) URL like https://host/path, got {mirror!r}")
    u = urlsplit(url)
    return urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


def ensure_writable(root: Path) -> Path:
    """Create ``<root>/.downloads`` and prove it is writable; return it."""
    downloads = check_writable_folder(
        root / ".downloads", "the data folder's staging area",
        f"; pass --root DIR or set {DATA_ENV} to a writable folder")
    for stale in downloads.glob("extract-*"):  # staging left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    return downloads


def _match_archives(paths: Sequence[str | Path], chosen: Sequence[Source]) -> dict[str, Path]:
    by_name = {s.filename: s for s in chosen}
    found: dict[str, Path] = {}
    for p in map(Path, paths):
        p = p.expanduser()
        if not p.is_file():
            raise DataError(f"--from {p}: no such file")
        if p.name not in by_name:
            raise DataError(f"--from {p}: not an archive for the datasets and scales asked; "
                            f"expected a file named {' or '.join(sorted(by_name)) or '(none)'}")
        found[by_name[p.name].name] = p
    return found


def install(which: str, scales: Sequence[int] = (2, 3, 4), root: str | Path | None = None, *,
            mirror: str | None = None, from_files: Sequence[str | Path] = (),
            keep_archives: bool = False, sources: Sequence[Source] | None = None,
            timeout: float = 30.0, retries: int = 2, progress: bool = True,
            log: Callable[[str], None] = lambda msg: None) -> list[Outcome]:
    """Download (or import ``from_files``), verify and install ``which`` for ``scales``."""
    chosen = select_sources(which, scales, sources)
    base = resolve_root(root)
    imports = _match_archives(from_files, chosen)
    if from_files:
        chosen = [s for s in chosen if s.name in imports]
    outcomes = [Outcome(s, "present", []) for s in chosen if s.is_complete(base, scales)]
    for o in outcomes:
        log(f"{o.source.name}: already installed in {base}, skipped")
    todo = [s for s in chosen if s.name not in {o.source.name for o in outcomes}]
    if not todo:
        return outcomes
    downloads = ensure_writable(base)
    for s in todo:
        imported = imports.get(s.name)
        if imported is None:
            archive = fetch(s, downloads, mirror=mirror, timeout=timeout, retries=retries,
                            progress=progress, log=log)
        else:
            archive = imported
        repacked = imported is not None and _is_repacked(imported, s, scales, log)
        outcomes.append(_extract(s, archive, base, downloads, scales, log,
                                 drop_archive=imported is None and not keep_archives,
                                 repacked=repacked))
    return outcomes


def _is_repacked(archive: Path, s: Source, scales: Sequence[int],
                 log: Callable[[str], None]) -> bool:
    """False for the official archive; True for a repacked copy whose members check out
    (folders, file counts, images); DataError for any other."""
    got = file_md5(archive)
    if got == s.md5:
        return False
    log(f"{s.name}: {archive} has md5 {got}, not the official {s.md5}; checking its folders, "
        "file counts and images instead")
    _check_repacked(archive, s, scales)
    return True


def _extract(s: Source, archive: Path, base: Path, downloads: Path, scales: Sequence[int],
             log: Callable[[str], None], *, drop_archive: bool, repacked: bool) -> Outcome:
    log(f"{s.name}: extracting")
    try:
        folders = extract_folders(archive, s.kind, s.wanted(scales), base / s.dest, downloads)
    except ArchiveError as exc:  # unusable content: drop it (a full disk keeps it)
        if drop_archive:
            archive.unlink(missing_ok=True)
        if repacked:
            raise _not_official(archive, s, exc) from None
        raise
    if drop_archive:
        archive.unlink(missing_ok=True)
    log(f"{s.name}: installed {', '.join(str(f) for f in folders)}")
    return Outcome(s, "installed", folders)


def _not_official(archive: Path, s: Source, exc: Exception) -> DataError:
    return DataError(f"{archive} is not the official {s.filename} (md5 differs) and its "
                     f"content does not check out: {exc}; nothing was installed")


def _check_repacked(archive: Path, s: Source, scales: Sequence[int]) -> None:
    """Check that every file in the folders asked of an archive whose md5 is not the official
    one decodes as an image (extract_folders then checks the file counts). DataError if not."""
    wanted = {PurePosixPath(f) for f in s.wanted(scales)}
    try:
        with open_archive(archive, s.kind) as (members, opener):
            for m in members:
                if m.is_dir or m.path.name.startswith(".") or wanted.isdisjoint(m.path.parents):
                    continue
                with open_member(m.handle, opener) as f:
                    data = f.read()
                try:
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
                        Image.DecompressionBombError) as exc:
                    raise ArchiveError(f"member {m.path} is not a readable image ({exc})"
                                       ) from None
    except (ArchiveError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise _not_official(archive, s, exc) from None


def fetch(source: Source, downloads: Path, *, mirror: str | None = None, timeout: float = 30.0,
          retries: int = 2, progress: bool = True,
          log: Callable[[str], None] = lambda msg: None) -> Path:
    """Download ``source`` into ``downloads`` (resuming a ``.part``) and verify its md5."""
    final = downloads / source.filename
    if final.is_file():
        if file_md5(final) == source.md5:
            log(f"{source.name}: using the archive already in {downloads}")
            return final
        final.unlink()
    url = mirror_url(source.url, mirror)
    part = downloads / f"{source.filename}.part"
    log(f"{source.name}: downloading {url}")
    for attempt in range(retries + 1):
        try:
            stream(url, part, timeout, progress, source.filename)
            break
        except Interrupted as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise DataError(f"download of {source.filename} interrupted after {have} bytes "
                                f"({exc}); run the same command again to resume, or use "
                                "--mirror URL") from None
            log(f"{source.name}: connection lost after {have} bytes ({exc}); resuming")
            time.sleep(min(2.0**attempt, 10.0))
    os.replace(part, final)
    got = file_md5(final)
    if got != source.md5:
        final.unlink()
        raise DataError(f"checksum mismatch for {source.filename}: expected md5 {source.md5}, "
                        f"got {got}; the bad download was deleted and nothing was installed; "
                        "run the command again, or use --mirror URL or --from FILE")
    return final
