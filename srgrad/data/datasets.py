"""Where the data sets live, evaluation (LR, HR) pairs, training HR lists and the LR cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srgrad.data.resize import RESIZE_VERSION, bicubic_downscale, modcrop
from srgrad.errors import DataError
from srgrad.fileio import atomic_path

BENCHMARKS: dict[str, str] = {
    "set5": "Set5",
    "set14": "Set14",
    "b100": "B100",
    "urban100": "Urban100",
    "div2k-valid": "DIV2K",
}
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DATA_ENV = "SRGRAD_DATA"
DEFAULT_ROOT = "datasets"


@dataclass(frozen=True)
class EvalPair:
    name: str
    hr_path: Path
    lr_path: Path | None  # None: make the LR with bicubic_downscale


def resolve_root(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SRGRAD_DATA``, else ``datasets/`` in the cwd
    (``~`` expanded)."""
    return Path(root or os.environ.get(DATA_ENV) or DEFAULT_ROOT).expanduser()


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), skipping hidden files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image to uint8: HxWx3 RGB, or HxW for grayscale files.

    Palette, alpha and CMYK images become RGB; 16-bit grayscale is scaled to 8 bits.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16L", "I;16B", "I"):
                wide = np.asarray(im, dtype=np.float64)
                scale = 257.0 if wide.max() > 255 else 1.0
                return np.clip(np.floor(wide / scale + 0.5), 0, 255).astype(np.uint8)
            if im.mode == "LA":
                im = im.convert("L")
            elif im.mode != "L":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _missing(label: str, where: Path, root: Path, what: str) -> DataError:
    return DataError(
        f"{label} not found under {where}; run `srgrad download {what} --root {root}` "
        "or pass --root"
    )


def eval_pairs(name: str, scale: int, root: str | Path | None = None) -> list[EvalPair]:
    """The (HR, LR) files of a benchmark set, DIV2K validation, or a folder of HR images."""
    root = resolve_root(root)
    key = name.lower()
    if key == "div2k-valid":
        hr_dir = root / "DIV2K" / "DIV2K_valid_HR"
        lr_dir = root / "DIV2K" / "DIV2K_valid_LR_bicubic" / f"X{scale}"
        label, what = "DIV2K validation", "div2k"
    elif key in BENCHMARKS:
        set_dir = root / "benchmark" / BENCHMARKS[key]
        hr_dir, lr_dir = set_dir / "HR", set_dir / "LR_bicubic" / f"X{scale}"
        label, what = BENCHMARKS[key], "benchmark"
    else:
        folder = Path(name)
        if not folder.is_dir():
            known = ", ".join(BENCHMARKS)
            raise DataError(f"unknown dataset {name!r}: use one of {known} or an image folder")
        paths = list_images(folder)
        if not paths:
            raise DataError(f"no images (png/jpg/bmp/tif/webp) found in {folder}")
        return [EvalPair(p.stem, p, None) for p in paths]
    paths = list_images(hr_dir)
    if not paths:
        raise _missing(label, hr_dir if key == "div2k-valid" else hr_dir.parent, root, what)
    pairs = []
    for p in paths:
        lr = lr_dir / f"{p.stem}x{scale}.png"
        pairs.append(EvalPair(p.stem, p, lr if lr.is_file() else None))
    return pairs


def load_pair(pair: EvalPair, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 arrays; HR modcropped to ``scale``, LR made by bicubic if not on disk."""
    hr = modcrop(load_rgb(pair.hr_path), scale)
    if pair.lr_path is None:
        return bicubic_downscale(hr, scale), hr
    lr = load_rgb(pair.lr_path)
    expected = (hr.shape[0] // scale, hr.shape[1] // scale) + hr.shape[2:]
    if lr.shape != expected:
        raise DataError(
            f"{pair.lr_path} has shape {lr.shape} but its HR {pair.hr_path} needs {expected} "
            f"at x{scale}; delete the LR file to have it recomputed"
        )
    return lr, hr


def _div2k_train_dir(folder: Path) -> Path | None:
    for candidate in (folder / "DIV2K_train_HR", folder / "DIV2K" / "DIV2K_train_HR"):
        if candidate.is_dir():
            return candidate
    if folder.name == "DIV2K_train_HR":
        return folder
    return None


def hr_training_paths(data_dirs: list[Path]) -> list[Path]:
    """HR training images from DIV2K roots, ``HR/`` set folders, folders of sets, or any folder."""
    if not data_dirs:
        raise DataError("no training data folder given; pass --data")
    paths: list[Path] = []
    for folder in map(Path, data_dirs):
        if not folder.is_dir():
            raise DataError(f"training data folder not found: {folder}")
        div2k = _div2k_train_dir(folder)
        if div2k is not None:
            found = list_images(div2k)
        elif (folder / "HR").is_dir():
            found = list_images(folder / "HR")
        else:
            sets = sorted(d / "HR" for d in folder.iterdir() if (d / "HR").is_dir())
            found = [p for hr in sets for p in list_images(hr)] if sets else list_images(folder)
        if not found:
            raise DataError(f"no HR images found in {folder}")
        paths.extend(found)
    return paths


def lr_cache_path(hr_path: str | Path, scale: int, cache_dir: str | Path) -> Path:
    """Cache file of the bicubic LR: keyed by path, size, mtime, scale and RESIZE_VERSION."""
    hr_path = Path(hr_path)
    stat = hr_path.stat()
    key = f"{hr_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|x{scale}|v{RESIZE_VERSION}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{hr_path.stem}_x{scale}_{digest}.png"


def cached_lr(
    hr_path: str | Path, hr_array: np.ndarray, scale: int, cache_dir: str | Path
) -> np.ndarray:
    """The bicubic LR of ``hr_array`` (the image at ``hr_path``), from or into the cache."""
    target = lr_cache_path(hr_path, scale, cache_dir)
    hr = modcrop(hr_array, scale)
    expected = (hr.shape[0] // scale, hr.shape[1] // scale) + hr.shape[2:]
    if target.is_file():
        try:
            lr = load_rgb(target)
        except DataError:
            lr = None  # a damaged cache entry is simply recomputed
        if lr is not None and lr.shape == expected:
            return lr
    lr = bicubic_downscale(hr, scale)
    # Written to a temporary file and renamed, so that parallel workers never read half a file.
    with atomic_path(target) as tmp:
        Image.fromarray(lr).save(tmp, format="PNG", compress_level=1)
    return lr
