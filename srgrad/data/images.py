"""Read and write images as people have them; every failure is a one-line DataError.

Reading (`read_image`):
- EXIF orientation is applied, so pixels are upright as viewers show them.
- Grayscale stays grayscale (L, and 16-bit I;16); RGBA/LA keep their alpha separately
  (`Picture.alpha`), palette images become RGB (RGBA if they have transparency), CMYK and other
  colour spaces become RGB (through the embedded ICC profile when there is one).
- 16-bit grayscale PNGs stay 16-bit. Pillow has no 16-bit RGB mode and reads such files as
  8-bit RGB: that precision is lost before srgrad sees the pixels. `Picture.color_16bit` says
  so, and `srgrad upscale` warns that its output is 8-bit per channel. (Keeping 16 bits would
  need a second decoder and encoder: Pillow cannot write 16-bit RGB either.)
- The ICC profile travels in `Picture.icc` to the written output.
- A decompression-bomb guard: images over `max_pixels` (default: Pillow's own limit) are refused
  before their pixels are decoded. With the guard off (0), an image whose pixels would not fit
  in the memory left (RAM and swap) is refused with its size before decoding, and so is one
  whose allocation fails (MemoryError).
- Every file is fully decoded (`.load()`), so a truncated file fails here, not half-way later.
- This is the one decoder: `srgrad upscale` uses it as it is; evaluation and training read
  through `datasets.load_rgb`, which takes its pixels to 8 bits with `to_8bit`.

Writing (`write_image`) goes to a temporary file in the destination folder and is renamed into
place, so an output file is either complete or absent. Sizes over a format's limit (WebP 16383,
JPEG 65500 pixels a side) fail with one line before anything is encoded.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from srgrad.data.files import atomic_path
from srgrad.errors import DataError, reason

# Suffixes picked up when walking a folder (explicit file arguments may have any suffix).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm",
                  ".pnm", ".tga", ".gif")
# Data-set folders (training and evaluation) take only the photographic formats: a GIF or
# PNM/TGA file there is more likely a stray than a high-resolution image.
DATASET_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# PNG's zlib level. Pillow's default, 6, spent 10.4 s encoding one 3840x3840 output against
# 1.6 s at level 1 for a file 16% larger (20.4 vs 23.7 MB; docs/benchmarks.md): for an
# upscaler whose outputs are large, level 1 is the default (OpenCV's as well); --png-level 9
# gives the smallest files.
PNG_LEVEL = 1
OUTPUT_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
SUFFIX_OF_FORMAT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
# Largest side each format can store (libwebp's WEBP_MAX_DIMENSION, libjpeg's
# JPEG_MAX_DIMENSION); Pillow fails on larger ones only once encoding starts.
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}
MAX_PIXELS_HINT = "pass --max-pixels N to allow it"

_limit_lock = threading.Lock()


@dataclass
class Picture:
    """Pixels ready for the network plus what must survive to the output."""

    pixels: np.ndarray  # HxW (gray) or HxWx3 (RGB); uint8 or uint16
    alpha: np.ndarray | None = None  # HxW, same dtype as pixels, or None
    icc: bytes | None = None
    format: str | None = None  # the file's format as Pillow names it ("PNG", "JPEG", ...)
    color_16bit: bool = False  # the file has 16 bits per color channel, decoded to 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.pixels.shape[1], self.pixels.shape[0]


def default_max_pixels() -> int | None:
    """Pillow's decompression-bomb limit (None when the user switched it off globally)."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else None


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    # srgrad applies its own limit; Pillow's global one would refuse images the user allowed.
    with _limit_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _too_large(path: Path, size: tuple[int, int] | None) -> DataError:
    if size is None:
        return DataError(f"{path}: too large to decode in memory")
    width, height = size
    return DataError(f"{path}: {width}x{height} = {width * height:,} pixels is too large to "
                     "decode in memory")


# (limit, usage) files of the container's memory cgroup, v2 then v1: a container sees the
# host's /proc/meminfo, and the kernel kills a process at its cgroup's limit, not the host's.
CGROUP_MEMORY = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def available_memory() -> int | None:
    """Bytes that can still be allocated (Linux): RAM and swap, and no more than what the
    memory cgroup's limit leaves; None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            info = dict(line.split(":", 1) for line in handle if ":" in line)
        free = sum(int(info[k].split()[0]) * 1024 for k in ("MemAvailable", "SwapFree"))
    except (OSError, KeyError, ValueError):
        return None
    headroom = _cgroup_headroom()
    return free if headroom is None else min(free, headroom)


def _cgroup_headroom() -> int | None:
    """The memory cgroup's limit minus its usage; None without a (finite) limit."""
    for limit_file, usage_file in CGROUP_MEMORY:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as ~2^63
            return None
        return max(0, int(limit) - usage)
    return None


def _check_size(path: Path, im: Image.Image, max_pixels: int | None, hint: str) -> None:
    """Refuse, before decoding, an image over `max_pixels` or one whose pixels cannot fit in
    memory: on Linux the allocation of such an image rarely fails; the decoder fills it until
    the kernel kills the process (other jobs with it, possibly)."""
    width, height = im.size
    if max_pixels and width * height > max_pixels:
        raise DataError(f"{path}: {width}x{height} = {width * height:,} pixels is over the "
                        f"{max_pixels:,} pixel limit (decompression-bomb guard); {hint}")
    free = available_memory()
    per_pixel = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    if free is not None and width * height * per_pixel > free:
        raise _too_large(path, im.size)


def read_image(path: str | Path, max_pixels: int | None = -1, hint: str = MAX_PIXELS_HINT
               ) -> Picture:
    """Decode `path` into a Picture. max_pixels: -1 = Pillow's limit, None or 0 = no limit;
    `hint`: what the error line for an image over the limit tells the user to do."""
    path = Path(path)
    if max_pixels == -1:
        max_pixels = default_max_pixels()
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    size: tuple[int, int] | None = None
    try:
        with _pillow_limit_off(), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = im.size
                _check_size(path, im, max_pixels, hint)
                color_16bit = _has_16bit_color(im)
                im.load()  # decode everything now: truncated files fail here
                fmt, frames = im.format, getattr(im, "n_frames", 1)
                im = ImageOps.exif_transpose(im)
                picture = from_pil(im, source=str(path))
    except DataError:
        raise
    except MemoryError:  # where an allocation does fail (ulimit -v, other systems)
        raise _too_large(path, size) from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode image ({reason(exc)})") from None
    picture.format, picture.color_16bit = fmt, color_16bit
    if frames > 1:
        warnings.warn(f"{path}: {frames} frames (an animation or a multi-page file); only the "
                      "first is used", stacklevel=2)
    return picture


def _has_16bit_color(im: Image.Image) -> bool:
    """Whether Pillow will decode 16 bits per channel to 8, as it does for every 16-bit mode
    but grayscale (I;16): the raw mode of a tile says ;16 (PNG, TIFF), or a PPM's maximum is
    over 255. Asked before load(), which drops the tiles."""
    if im.mode.startswith(("I", "F")):
        return False
    for tile in im.tile:
        codec, args = tile[0], tile[3] if isinstance(tile[3], tuple) else (tile[3],)
        if ";16" in str(args[0]):
            return True
        if codec == "ppm" and len(args) > 1 and isinstance(args[1], int) and args[1] > 255:
            return True
    return False


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            from PIL import ImageCms
        except ImportError:  # Pillow built without LittleCMS
            return im.convert("RGB")
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except (OSError, ImageCms.PyCMSError):
            pass  # a broken profile: fall back to the naive conversion
    return im.convert("RGB")


def from_pil(im: Image.Image, source: str = "image") -> Picture:
    """Split a PIL image into network pixels, alpha and ICC profile (no EXIF handling here)."""
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    elif mode == "P":
        mode = "RGBA" if "transparency" in im.info else "RGB"
        im = im.convert(mode)
    elif mode in ("L", "RGB") and "transparency" in im.info:  # a tRNS colour key: alpha
        mode = mode + "A"
        im = im.convert(mode)
    elif mode in ("PA", "RGBa", "La"):
        mode = "LA" if mode == "La" else "RGBA"
        im = im.convert(mode)
    elif mode == "CMYK":
        im, mode, icc = _cmyk_to_rgb(im, icc), "RGB", None  # a CMYK profile no longer applies
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(f"{source}: 32-bit integer pixels outside 0..65535 are not supported")
        return Picture(arr.astype(np.uint16), None, icc)
    elif mode == "F":
        raise DataError(f"{source}: 32-bit float images are not supported; save as 8/16-bit")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im, mode = im.convert("RGB"), "RGB"  # YCbCr, LAB, HSV, ...
    arr = np.asarray(im)
    if mode in ("LA", "RGBA"):
        color = arr[..., 0] if mode == "LA" else arr[..., :3]
        return Picture(np.ascontiguousarray(color), arr[..., -1].copy(), icc)
    return Picture(np.ascontiguousarray(arr), None, icc)


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as they are; uint16 (16-bit by the file's mode) rounded to the nearest of
    256 levels, round(x * 255 / 65535), so 0 and 65535 stay black and white."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype != np.uint16:
        raise TypeError(f"to_8bit expects uint8 or uint16 pixels, got {pixels.dtype}")
    return np.rint(pixels / 257.0).astype(np.uint8)  # 65535 / 255 = 257 exactly; no ties


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None = None, icc: bytes | None = None
           ) -> Image.Image:
    """Inverse of from_pil: uint8 gray/RGB (+ alpha) or uint16 gray -> PIL image."""
    if pixels.dtype == np.uint16:
        if pixels.ndim != 2:
            raise DataError("16-bit output is only possible for grayscale images")
        im = Image.fromarray(pixels)  # I;16
    else:
        if pixels.dtype != np.uint8:
            raise TypeError(f"to_pil expects uint8 or uint16 pixels, got {pixels.dtype}")
        if alpha is not None:
            arr = np.dstack([pixels, to_8bit(alpha)])
            im = Image.fromarray(arr, "LA" if pixels.ndim == 2 else "RGBA")
        else:
            im = Image.fromarray(pixels)
    if icc:
        im.info["icc_profile"] = icc
    return im


def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscaling of an alpha channel (HxW), same dtype, clipped to its range."""
    h, w = alpha.shape
    im = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.float32), "F")
    out = np.asarray(im.resize((w * scale, h * scale), Image.Resampling.BICUBIC))
    if alpha.dtype in (np.uint8, np.uint16):
        top = 65535 if alpha.dtype == np.uint16 else 255
        return np.clip(np.rint(out), 0, top).astype(alpha.dtype)
    return np.clip(out, 0, 255).astype(alpha.dtype)  # float alpha on the 0-255 scale


def output_format(name: str | None, path: Path) -> str:
    """Pillow format name for `name` (png|jpg|webp) or from the suffix of `path`."""
    key = (name or path.suffix.lstrip(".")).lower()
    if key not in OUTPUT_FORMATS:
        raise DataError(f"{path}: cannot write format {key!r}; use png, jpg or webp")
    return OUTPUT_FORMATS[key]


def _prepare(image: Image.Image, fmt: str, path: Path) -> Image.Image:
    width, height = image.size
    if fmt in MAX_SIDE and max(width, height) > MAX_SIDE[fmt]:
        raise DataError(f"{path}: {width}x{height} is over {fmt}'s limit of {MAX_SIDE[fmt]} "
                        "pixels a side; use --format png")
    if fmt in ("JPEG", "WEBP") and image.mode.startswith("I"):  # 8-bit formats get 8 bits
        wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
        image = Image.fromarray(to_8bit(wide))
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        raise DataError(f"{path}: JPEG cannot store transparency; use --format png or webp")
    return image


def write_image(path: str | Path, image: np.ndarray | Image.Image, format: str | None = None,
                icc: bytes | None = None, alpha: np.ndarray | None = None,
                quality: int = 95, png_level: int = PNG_LEVEL) -> Path:
    """Write atomically: a temp file in the same folder, renamed over `path` when complete.

    png_level: zlib level 0-9 of PNG output (see PNG_LEVEL)."""
    path = Path(path)
    fmt = output_format(format, path)
    im = image if isinstance(image, Image.Image) else to_pil(image, alpha)
    icc = icc or im.info.get("icc_profile")
    im = _prepare(im, fmt, path)
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if fmt == "PNG":
        options.update(compress_level=png_level)
    elif fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality)
    tmp: Path | None = None
    try:
        with atomic_path(path, parents=False) as tmp, open(tmp, "wb") as handle:
            im.save(handle, fmt, **options)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        where = f" to {path.parent}" if tmp is None else ""  # None: no temporary file made
        raise DataError(f"{path}: cannot write{where} ({reason(exc)})") from None
    return path
