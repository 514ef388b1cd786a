"""Reading and writing images as people have them (srgrad.data.images)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from srgrad.data import images
from srgrad.data.images import read_image, resize_alpha, to_pil, write_image
from srgrad.errors import DataError


def rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but holds no pixel data (a bomb stand-in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_rgb_png_round_trip(tmp_path):
    arr = rgb()
    write_image(tmp_path / "a.png", arr)
    pic = read_image(tmp_path / "a.png")
    assert pic.pixels.dtype == np.uint8 and np.array_equal(pic.pixels, arr)
    assert pic.alpha is None and pic.format == "PNG" and pic.size == (16, 12)


def test_grayscale_stays_grayscale(tmp_path):
    Image.fromarray(rgb()[..., 0]).save(tmp_path / "g.png")
    pic = read_image(tmp_path / "g.png")
    assert pic.pixels.shape == (12, 16)
    Image.fromarray(rgb()[..., 0] > 128).save(tmp_path / "bw.png")  # mode "1" -> L
    assert read_image(tmp_path / "bw.png").pixels.shape == (12, 16)


def test_rgba_keeps_alpha(tmp_path):
    arr = np.dstack([rgb(), np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)])
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    assert pic.pixels.shape == (12, 16, 3) and np.array_equal(pic.alpha, arr[..., 3])
    write_image(tmp_path / "b.png", pic.pixels, alpha=pic.alpha)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_palette_becomes_rgb_or_rgba(tmp_path):
    im = Image.fromarray(rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    im.save(tmp_path / "p.png")
    pic = read_image(tmp_path / "p.png")
    assert pic.pixels.shape == (12, 16, 3) and pic.alpha is None
    im.save(tmp_path / "pt.png", transparency=0)
    pic = read_image(tmp_path / "pt.png")
    assert pic.pixels.shape == (12, 16, 3) and pic.alpha is not None
    assert set(np.unique(pic.alpha)) <= {0, 255} and 0 in pic.alpha


def test_cmyk_becomes_rgb(tmp_path):
    Image.fromarray(rgb()).convert("CMYK").save(tmp_path / "c.jpg")
    pic = read_image(tmp_path / "c.jpg")
    assert pic.pixels.shape == (12, 16, 3) and pic.pixels.dtype == np.uint8
    assert pic.icc is None


def test_16bit_png_stays_16bit(tmp_path):
    arr = (np.arange(12 * 16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    pic = read_image(tmp_path / "d.png")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, arr)
    write_image(tmp_path / "e.png", pic.pixels)
    back = Image.open(tmp_path / "e.png")
    assert back.mode.startswith("I") and np.array_equal(np.asarray(back), arr)
    write_image(tmp_path / "e.jpg", pic.pixels)  # 8-bit formats get 8 bits
    assert Image.open(tmp_path / "e.jpg").mode == "L"


def test_exif_orientation_applied(tmp_path):
    arr = rgb(10, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif, quality=100)
    assert read_image(tmp_path / "r.jpg").pixels.shape == (30, 10, 3)


def test_icc_profile_carried(tmp_path):
    icc = srgb_icc()
    Image.fromarray(rgb()).save(tmp_path / "i.png", icc_profile=icc)
    pic = read_image(tmp_path / "i.png")
    assert pic.icc == icc
    for name in ("o.png", "o.jpg", "o.webp"):
        write_image(tmp_path / name, pic.pixels, icc=pic.icc)
        assert Image.open(tmp_path / name).info.get("icc_profile") == icc


def test_pixel_limit(tmp_path):
    bomb = header_only_png(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(DataError, match=r"bomb\.png.*--max-pixels"):
        read_image(bomb)  # Pillow's default limit
    Image.fromarray(rgb()).save(tmp_path / "small.png")
    with pytest.raises(DataError, match=r"small\.png.*192 pixels.*over the 100"):
        read_image(tmp_path / "small.png", max_pixels=100)
    assert read_image(tmp_path / "small.png", max_pixels=None).pixels.shape == (12, 16, 3)
    assert Image.MAX_IMAGE_PIXELS == images.default_max_pixels()  # global restored


@pytest.mark.parametrize("kind", ["text", "truncated", "empty", "missing", "folder"])
def test_bad_files_raise_one_line_data_error(tmp_path, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "text":
        path.write_text("not an image at all")
    elif kind == "truncated":
        Image.fromarray(rgb(64, 64)).save(path)
        path.write_bytes(path.read_bytes()[:-200])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(DataError) as info:
        read_image(path)
    assert path.name in str(info.value) and "\n" not in str(info.value)


def test_write_is_atomic(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(DataError, match="out.png.*disk full"):
        write_image(dest, rgb())
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left


def test_write_errors(tmp_path):
    with pytest.raises(DataError, match="cannot write"):
        write_image(tmp_path / "missing" / "x.png", rgb())
    with pytest.raises(DataError, match="JPEG cannot store transparency"):
        write_image(tmp_path / "x.jpg", rgb(), alpha=np.zeros((12, 16), np.uint8))
    with pytest.raises(DataError, match="format 'gif'"):
        write_image(tmp_path / "x.gif", rgb())
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_normal_permissions(tmp_path):
    write_image(tmp_path / "p.png", rgb())
    assert (tmp_path / "p.png").stat().st_mode & 0o044  # group/other readable (umask 022)


def test_resize_alpha_and_to_pil():
    alpha = np.zeros((4, 5), np.uint8)
    alpha[1:3, 1:4] = 255
    up = resize_alpha(alpha, 3)
    assert up.shape == (12, 15) and up.dtype == np.uint8 and up.max() == 255
    assert to_pil(rgb(4, 5), up[:4, :5]).mode == "RGBA"
    assert to_pil(rgb(4, 5)[..., 0], alpha).mode == "LA"
    assert resize_alpha(alpha.astype(np.float32), 2).dtype == np.float32
