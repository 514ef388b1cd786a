"""Where the data sets live, evaluation (LR, HR) pairs, training HR lists and the LR cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srgrad.data.files import atomic_path
from srgrad.data.images import DATASET_SUFFIXES, read_image, to_8bit
from srgrad.data.resize import RESIZE_VERSION, bicubic_downscale, modcrop
from srgrad.errors import DataError

BENCHMARKS: dict[str, str] = {
    "set5": "Set5",
    "set14": "Set14",
    "b100": "B100",
    "urban100": "Urban100",
    "div2k-valid": "DIV2K",
}
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


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and its subfolders if ``recursive``; sorted), skipping
    hidden files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in (folder.rglob("*") if recursive else folder.iterdir())
        if p.suffix.lower() in DATASET_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def folder_images(folder: str | Path, recursive: bool = False) -> tuple[list[Path], int]:
    """The images of a plain folder (directly in it, or at any depth if ``recursive``) and
    how many images its subfolders hold that were left out."""
    every = list_images(folder)
    found = every if recursive else [p for p in every if p.parent == Path(folder)]
    return found, len(every) - len(found)


def is_benchmark_layout(folder: str | Path) -> bool:
    """A set laid out as the benchmarks are: ``HR/`` beside ``LR_bicubic/X<scale>/``."""
    return (Path(folder) / "HR").is_dir()


def load_rgb(path: str | Path) -> np.ndarray:
    """The 8-bit pixels that evaluation and training use: HxWx3 RGB, or HxW for grayscale.

    Decoded by images.read_image, the decoder of `srgrad upscale` (EXIF orientation applied,
    palette and CMYK made RGB, Pillow's pixel limit), then alpha is dropped (scores and
    training see the colour only) and 16-bit files, 16-bit by their mode whatever their
    values, are rounded to 8 bits (images.to_8bit): benchmark scores are defined on 8-bit
    images, so a 16-bit HR is scored as its nearest 8-bit image.
    """
    picture = read_image(path, hint="evaluation and training take images up to that size; "
                                     "downscale or crop it")
    return to_8bit(picture.pixels)


def _missing(label: str, where: Path, root: Path, what: str) -> DataError:
    return DataError(
        f"{label} not found under {where}; run `srgrad download {what} --root {root}` "
        "or pass --root"
    )


def _image_names(paths: list[Path], folder: Path) -> list[str]:
    """Each image's path below ``folder`` without its suffix, or with it where two would
    otherwise share a name (a.png and a.jpg)."""
    rel = [p.relative_to(folder) for p in paths]
    names = [r.with_suffix("").as_posix() for r in rel]
    return [r.as_posix() if names.count(n) > 1 else n for r, n in zip(rel, names, strict=True)]


def _folder_pairs(folder: Path, recursive: bool) -> list[EvalPair]:
    paths, left_out = folder_images(folder, recursive)
    if not paths:
        deeper = f" ({left_out} in its subfolders: pass --recursive)" if left_out else ""
        raise DataError(f"no images (png/jpg/bmp/tif/webp) found in {folder}{deeper}")
    return [EvalPair(n, p, None) for n, p in zip(_image_names(paths, folder), paths, strict=True)]


def eval_pairs(name: str, scale: int, root: str | Path | None = None,
               recursive: bool = False) -> list[EvalPair]:
    """The (HR, LR) files of a benchmark set, DIV2K validation, or a folder: one in the
    benchmark layout (HR/ and LR_bicubic/X<scale>/) is read as a benchmark set; any other
    folder gives its images as HR, its subfolders' too only if ``recursive``. An HR without
    its LR file gets an LR made by bicubic_downscale."""
    root = resolve_root(root)
    key = name.lower()
    if key == "div2k-valid":
        hr_dir = root / "DIV2K" / "DIV2K_valid_HR"
        lr_dir = root / "DIV2K" / "DIV2K_valid_LR_bicubic" / f"X{scale}"
        missing = _missing("DIV2K validation", hr_dir, root, "div2k")
    elif key in BENCHMARKS:
        set_dir = root / "benchmark" / BENCHMARKS[key]
        hr_dir, lr_dir = set_dir / "HR", set_dir / "LR_bicubic" / f"X{scale}"
        missing = _missing(BENCHMARKS[key], set_dir, root, "benchmark")
    else:
        folder = Path(name)
        if not folder.is_dir():
            known = ", ".join(BENCHMARKS)
            what = (f"{name} is not a folder" if folder.exists() else
                    f"folder {name} does not exist" if os.sep in name else
                    f"unknown dataset {name!r}")
            raise DataError(f"{what}: use one of {known} or an image folder")
        if not is_benchmark_layout(folder):
            return _folder_pairs(folder, recursive)
        hr_dir, lr_dir = folder / "HR", folder / "LR_bicubic" / f"X{scale}"
        missing = DataError(f"no images (png/jpg/bmp/tif/webp) found in {hr_dir}")
    paths = list_images(hr_dir)
    if not paths:
        raise missing
    pairs = []
    for p in paths:
        lr = lr_dir / f"{p.stem}x{scale}.png"
        pairs.append(EvalPair(p.stem, p, lr if lr.is_file() else None))
    return pairs


def load_pair(pair: EvalPair, scale: int, min_side: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 arrays; HR modcropped to ``scale``, LR made by bicubic if not on disk.

    An HR under ``min_side`` pixels a side (a multiple of the scale, as metrics.min_side; at
    least one LR pixel in any case) is refused, naming the file."""
    hr = load_rgb(pair.hr_path)
    need = max(min_side, scale)
    if min(hr.shape[:2]) < need:
        raise DataError(f"{pair.hr_path}: {hr.shape[1]}x{hr.shape[0]} pixels is too small to "
                        f"score at x{scale}; it needs at least {need}x{need}")
    hr = modcrop(hr, scale)
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
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise DataError(f"training data folder {folder} {what}; --data takes folders")
        div2k = _div2k_train_dir(folder)
        if div2k is not None:
            found = list_images(div2k)
        elif (folder / "HR").is_dir():
            found = list_images(folder / "HR")
        else:
            sets = sorted(d / "HR" for d in folder.iterdir() if (d / "HR").is_dir())
            found = [p for hr in sets for p in list_images(hr)] if sets else list_images(folder)
            _refuse_lr_images(folder, found)
        if not found:
            raise DataError(f"no HR images found in {folder}")
        paths.extend(found)
    return paths


def _looks_low_res(path: Path, folder: Path) -> bool:
    """An LR image of a benchmark or SelfExSR layout: under an LR* folder, or named *_LR."""
    parts = path.relative_to(folder).parts[:-1]
    return any(p.upper().startswith("LR") for p in parts) or path.stem.upper().endswith("_LR")


def _refuse_lr_images(folder: Path, found: list[Path]) -> None:
    """Training on a folder's LR images as if they were HR would be a silent wrong result."""
    low = [p for p in found if _looks_low_res(p, folder)]
    if low:
        raise DataError(f"{folder} holds low-resolution images ({low[0].relative_to(folder)}, "
                        f"{len(low)} in all), which training would take as HR; pass its HR "
                        "folder, or import the set with `srgrad download benchmark --from`")


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
    if 0 in expected:  # under one LR pixel: nothing to cache (training skips it as too small)
        return np.zeros(expected, np.uint8)
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
