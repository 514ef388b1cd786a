"""Import Set5, Set14, BSD100 and Urban100 from a checkout of jbhuang0604/SelfExSR.

That repository (Huang et al., CVPR 2015) stores each set as
``data/<Set>/image_SRF_<s>/img_<nnn>_SRF_<s>_{HR,LR}.png`` for s = 2, 3, 4 (Urban100: 2 and
4 only; its ``Sun-Hays80`` set, at x8, is not imported). srgrad's benchmark layout, the one
EDSR's ``benchmark.tar`` installs and ``srgrad eval`` reads, is
``<root>/benchmark/<Set>/HR/<name>.png`` and ``.../LR_bicubic/X<s>/<name>x<s>.png``, with
BSD100 called B100. ``srgrad download benchmark --from <checkout or its data/>`` runs this.

Decisions:

- **Names** stay SelfExSR's ``img_001`` ..., as in ``shared/datasets/benchmark`` and the
  per-image tables in ``docs/eval``. A mapping to EDSR's names is reported for Set5 and Set14
  (``shared/datasets/README.md``, by pixel match: alphabetical order, Set5 img_001 baby, 002
  bird, 003 butterfly, 004 head, 005 woman), but this code cannot check it, none is known for
  BSD100 (EDSR names B100 by BSDS id), and Urban100 already uses ``img_nnn``: no set is
  renamed.
- **HR**: SelfExSR stores one HR per scale. In Set5, Set14 and BSD100 each is the same image
  modcropped to that scale (a few are the original less a row or column, e.g. every BSD100
  image lacks the 481st column). srgrad modcrops the HR at evaluation time, like EDSR, so the
  largest HR file is kept (largest area; none of the others may be taller or wider), and each
  other SRF folder's HR is checked to be, modcropped to its scale, exactly the kept HR
  modcropped to that scale. The HR files of every SRF folder are read for this, whatever
  scales are asked, so the kept HR does not depend on ``--scales``.
- **Urban100** differs: its ``image_SRF_4`` holds the full images (img_001: 1024x644,
  1000 to 1280 px on the long side), but its ``image_SRF_2`` holds every image at exactly half
  that size, with an LR identical to the x4 one. That x2 pair is not EDSR's x2 task and its
  LR is 1/4 of the kept HR, so it is not imported: a SRF folder whose HR files are all smaller
  copies (at most 2/3 in height and width) of the kept HR is reported and left out; one mixing
  crops and smaller copies is an error. Urban100 has no ``image_SRF_3``. Each image's HR must
  contain the others (none taller or wider than the kept one), else it is an error.
- **LR** of each scale asked is that scale's ``_LR.png``, copied byte for byte (as are the HR
  files). A scale a set lacks or whose folder was skipped is reported and left out;
  ``srgrad eval`` then makes that LR from the HR by bicubic.

Every file imported or compared is decoded in full (Pillow; of the others the header is read)
and every LR must be exactly 1/s of the kept HR modcropped to s, with the same channels. The
first failure is one DataError naming the file. Each set is assembled in a staging folder under
``<root>/.downloads`` and renamed into place only when complete, so a failure leaves no part of
that set installed (sets imported before the failure stay, an older copy of the failing set is
left as it was). A set already installed with the expected number of images for the scales
asked (and importable) is skipped; an incomplete one is rebuilt whole, with the scales asked
plus those it already had.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srgrad.data.archive import count_files
from srgrad.data.datasets import load_rgb
from srgrad.data.download import BENCHMARK_SETS, ensure_writable
from srgrad.data.resize import modcrop
from srgrad.errors import DataError, reason

SETS: dict[str, str] = {"Set5": "Set5", "Set14": "Set14", "BSD100": "B100",
                        "Urban100": "Urban100"}  # SelfExSR folder -> srgrad set name
SOURCE_SCALES = (2, 3, 4)
LAYOUT = "data/<Set>/image_SRF_<s>/img_<nnn>_SRF_<s>_HR.png"
_FILE = re.compile(r"(img_\d+)_SRF_(\d+)_(HR|LR)\.png")
Scan = dict[int, dict[tuple[str, str], Path]]  # SRF scale -> {(image name, "HR"|"LR"): file}


@dataclass(frozen=True)
class SetReport:
    """What happened to one set."""

    name: str  # srgrad's set name (B100 for BSD100)
    status: str  # "imported" or "present"
    images: int
    scales: tuple[int, ...]  # LR scales installed (or present)
    missing: tuple[int, ...]  # scales asked that the source set does not have
    resized: tuple[int, ...]  # scales asked whose SRF folder is a resized copy (not imported)
    path: Path


def find_data_dir(path: str | Path) -> Path:
    """The folder holding the set folders: ``path/data`` (a repository root) or ``path``."""
    path = Path(path).expanduser()
    for candidate in (path / "data", path):
        if any((candidate / name).is_dir() for name in SETS):
            return candidate
    raise DataError(f"--from {path}: no SelfExSR benchmark set found; give the root of a "
                    f"jbhuang0604/SelfExSR checkout or its data/ folder, laid out as {LAYOUT} "
                    f"with <Set> one of {', '.join(SETS)}")


def _scan(set_dir: Path) -> Scan:
    """Scale -> {(image name, "HR"|"LR"): file} for each ``image_SRF_<s>`` folder, s in 2..4."""
    found: Scan = {}
    for s in SOURCE_SCALES:
        folder = set_dir / f"image_SRF_{s}"
        if not folder.is_dir():
            continue
        files: dict[tuple[str, str], Path] = {}
        for p in sorted(folder.iterdir()):
            m = _FILE.fullmatch(p.name)
            if m and int(m.group(2)) == s and p.is_file():
                files[(m.group(1), m.group(3))] = p
        found[s] = files
    return found


def _names(set_dir: Path, scan: Scan, scales: Sequence[int],
           expected: int) -> list[str]:
    """The image names, once every SRF folder is checked to hold each HR (and each LR asked)."""
    names = sorted({name for files in scan.values() for name, _ in files})
    for s, files in scan.items():
        kinds = ("HR", "LR") if s in scales else ("HR",)
        for name in names:
            for kind in kinds:
                if (name, kind) not in files:
                    raise DataError(f"{set_dir / f'image_SRF_{s}' / f'{name}_SRF_{s}_{kind}.png'} "
                                    f"is missing (the set has {name} elsewhere)")
    if len(names) != expected:
        raise DataError(f"{set_dir} holds {len(names)} images, expected {expected}")
    return names


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" + ("" if len(shape) == 2 else f"x{shape[2]}")


def _header_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


@dataclass
class _Plan:
    keep: dict[str, Path]  # image name -> the HR file kept (the largest)
    crops: list[int]  # SRF folders whose HR files are the kept HR modcropped
    resized: dict[int, str]  # SRF folder holding a smaller, resized copy -> why it is left out


def _plan(set_dir: Path, scan: Scan, names: list[str]) -> _Plan:
    """Pick each image's HR by the header sizes and sort the SRF folders into crops of it and
    resized copies (Urban100's image_SRF_2 holds every image at half size)."""
    keep: dict[str, Path] = {}
    kinds: dict[int, dict[str, str]] = {s: {} for s in scan}
    for name in names:
        sizes = {s: _header_size(files[(name, "HR")]) for s, files in scan.items()}
        top = max(sizes, key=lambda s: sizes[s][0] * sizes[s][1])
        keep[name], (h, w) = scan[top][(name, "HR")], sizes[top]
        for s, (hs, ws) in sizes.items():
            path = scan[s][(name, "HR")]
            if (hs - hs % s, ws - ws % s) == (h - h % s, w - w % s):
                kinds[s][name] = "crop"
            elif 1.5 * hs <= h and 1.5 * ws <= w:
                kinds[s][name] = "resized"
            else:
                raise DataError(f"{path} ({ws}x{hs}) is neither a crop nor a resized copy of "
                                f"{keep[name]} ({w}x{h})")
    crops, resized = [], {}
    for s, by_name in kinds.items():
        if set(by_name.values()) == {"crop"}:
            crops.append(s)
            continue
        first = next(n for n, k in by_name.items() if k == "resized")
        small, big = _header_size(scan[s][(first, "HR")]), _header_size(keep[first])
        if "crop" in by_name.values():
            raise DataError(f"{scan[s][(first, 'HR')]} ({_size(small)}) is a smaller copy of "
                            f"{keep[first]} ({_size(big)}), while other HR files in "
                            f"image_SRF_{s} are crops of the largest HR")
        resized[s] = (f"{set_dir.name}/image_SRF_{s} holds the images at a smaller size "
                      f"({first}: HR {_size(small)}, not {_size(big)}), so its x{s} LR does not "
                      f"pair with the full-size HR")
    return _Plan(keep, sorted(crops), resized)


def _check_crops(name: str, scan: Scan, plan: _Plan) -> np.ndarray:
    """Decode the kept HR of ``name`` and check that each crop folder's HR is its modcrop."""
    big = load_rgb(plan.keep[name])
    for s in plan.crops:
        path = scan[s][(name, "HR")]
        if path == plan.keep[name]:
            continue
        ours, theirs = modcrop(big, s), modcrop(load_rgb(path), s)
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            raise DataError(f"{path} is not the same image as {plan.keep[name]}: modcropped to "
                            f"x{s} they differ ({_size(theirs.shape)} vs {_size(ours.shape)})")
    return big


def _check_lr(lr_path: Path, hr_path: Path, hr: np.ndarray, s: int) -> None:
    hr = modcrop(hr, s)
    lr = load_rgb(lr_path)
    want = (hr.shape[0] // s, hr.shape[1] // s) + hr.shape[2:]
    if lr.shape != want:
        raise DataError(f"{lr_path} is {_size(lr.shape)}, but its HR {hr_path} modcropped to "
                        f"x{s} is {_size(hr.shape)}, so the x{s} LR must be {_size(want)}")


def _is_complete(dest: Path, scales: Sequence[int], expected: int) -> bool:
    return count_files(dest / "HR") >= expected and all(
        count_files(dest / "LR_bicubic" / f"X{s}") >= expected for s in scales)


def _import_set(scan: Scan, names: list[str], plan: _Plan, dest: Path, staging_parent: Path,
                scales: Sequence[int]) -> None:
    """Check every file of one set into a staging folder, then rename it to ``dest``."""
    staging = Path(tempfile.mkdtemp(prefix=f"extract-selfexsr-{dest.name}-", dir=staging_parent))
    try:
        new = staging / dest.name
        (new / "HR").mkdir(parents=True)
        for s in scales:
            (new / "LR_bicubic" / f"X{s}").mkdir(parents=True)
        for name in names:
            hr = _check_crops(name, scan, plan)
            for s in scales:
                lr_path = scan[s][(name, "LR")]
                _check_lr(lr_path, plan.keep[name], hr, s)
                shutil.copyfile(lr_path, new / "LR_bicubic" / f"X{s}" / f"{name}x{s}.png")
            shutil.copyfile(plan.keep[name], new / "HR" / f"{name}.png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            os.rename(dest, staging / ".old")  # a rename cannot replace a non-empty folder
        os.rename(new, dest)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(f"disk full while importing into {dest}; free some space and run "
                            "the command again") from None
        raise DataError(f"could not import into {dest}: {reason(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def import_selfexsr(source: str | Path, root: Path, scales: Sequence[int], *,
                    log: Callable[[str], None] = lambda msg: None) -> list[SetReport]:
    """Import every SelfExSR set found under ``source`` into ``root/benchmark`` for ``scales``.

    Raises DataError (one line, naming the file) at the first file that fails its checks;
    sets imported before it stay installed, nothing of the failing set is.
    """
    data = find_data_dir(source)
    root = Path(root)
    staging_parent = ensure_writable(root)
    reports = []
    for src_name, name in SETS.items():
        set_dir = data / src_name
        if not set_dir.is_dir():
            log(f"{name}: no {src_name} folder in {data}, skipped")
            continue
        try:
            report = _one_set(set_dir, name, root, staging_parent, scales, log)
        except DataError as exc:
            raise DataError(f"{exc}; nothing of {name} was installed") from None
        reports.append(report)
    return reports


def _one_set(set_dir: Path, name: str, root: Path, staging_parent: Path,
             scales: Sequence[int], log: Callable[[str], None]) -> SetReport:
    dest = root / "benchmark" / name
    expected = BENCHMARK_SETS[name]
    have = [s for s in SOURCE_SCALES if (set_dir / f"image_SRF_{s}").is_dir()]
    missing = tuple(s for s in scales if s not in have)
    wanted = [s for s in scales if s in have]
    if _is_complete(dest, wanted, expected):  # the quick test, before reading any file
        log(f"{name}: already installed in {dest}, skipped")
        return SetReport(name, "present", expected, tuple(wanted), missing, (), dest)
    scan = _scan(set_dir)
    if not scan:
        raise DataError(f"{set_dir} has no image_SRF_2, image_SRF_3 or image_SRF_4 folder "
                        f"(expected {LAYOUT})")
    names = _names(set_dir, scan, wanted, expected)
    plan = _plan(set_dir, scan, names)
    resized = tuple(s for s in wanted if s in plan.resized)
    notes = [f"; {plan.resized[s]}: not imported" for s in resized] + [
        f"; x{s} is not in {set_dir.name}" for s in missing]
    eval_note = (f" (srgrad eval makes the LR of {', '.join(f'x{s}' for s in resized + missing)}"
                 " from HR by bicubic)" if resized or missing else "")
    wanted = [s for s in wanted if s in plan.crops]
    if _is_complete(dest, wanted, expected):
        log(f"{name}: already installed in {dest}, skipped")
        return SetReport(name, "present", expected, tuple(wanted), missing, resized, dest)
    # An incomplete set is rebuilt whole, keeping the scales it already had.
    wanted = sorted({*wanted, *(s for s in plan.crops
                                if (dest / "LR_bicubic" / f"X{s}").is_dir())})
    what = ", ".join(["HR", *(f"X{s}" for s in wanted)])
    log(f"{name}: importing {set_dir} ({what})")
    _import_set(scan, names, plan, dest, staging_parent, wanted)
    log(f"{name}: imported {len(names)} images ({what}) into {dest}{''.join(notes)}{eval_note}")
    return SetReport(name, "imported", len(names), tuple(wanted), missing, resized, dest)
