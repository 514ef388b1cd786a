"""Reading and writing images as people have them (srgrad.data.images)."""

from __future__ import annotations

import struct
import subprocess
import sys
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


def png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG of HxWxC pixels (C = 2, 3 or 4: LA, RGB, RGBA), which Pillow cannot write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, {2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
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


@pytest.mark.parametrize("channels", [3, 1])
def test_a_transparent_colour_key_becomes_alpha(tmp_path, channels):
    arr = rgb() if channels == 3 else rgb()[..., 0]
    key = tuple(int(v) for v in np.atleast_1d(arr[0, 0]))
    Image.fromarray(arr).save(tmp_path / "k.png", transparency=key if channels == 3 else key[0])
    pic = read_image(tmp_path / "k.png")
    keyed = np.all(np.atleast_3d(arr) == np.array(key), axis=-1)
    assert np.array_equal(pic.pixels, arr) and np.array_equal(pic.alpha, np.where(keyed, 0, 255))


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


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_color_is_flagged_as_read_in_8_bits(tmp_path, channels):
    """Pillow has no 16-bit color mode: such files (PNG LA/RGB/RGBA, 16-bit PPM) decode to
    8 bits per channel, and the Picture says so; 16-bit gray and 8-bit files do not."""
    wide = np.linspace(0, 65535, 12 * 16 * channels).reshape(12, 16, channels)
    pic = read_image(png16(tmp_path / "d.png", wide))
    assert pic.color_16bit and pic.pixels.dtype == np.uint8
    head = b"P6\n16 12\n65535\n"
    (tmp_path / "d.ppm").write_bytes(head + wide[..., :1].repeat(3, 2).astype(">u2").tobytes())
    assert read_image(tmp_path / "d.ppm").color_16bit
    Image.fromarray(wide[..., 0].astype(np.uint16)).save(tmp_path / "g.png")
    Image.fromarray(rgb()).save(tmp_path / "e.ppm")
    write_image(tmp_path / "e.png", rgb())
    for name in ("g.png", "e.ppm", "e.png"):
        assert not read_image(tmp_path / name).color_16bit, name


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


def test_an_image_too_large_for_memory_is_one_line(tmp_path, monkeypatch):
    """The decompression-bomb guard off (max_pixels=None): an image whose pixels would not fit
    in the memory left is refused before decoding (on Linux its allocation rarely fails: the
    kernel kills the process instead)."""
    Image.fromarray(rgb()).save(tmp_path / "a.png")
    monkeypatch.setattr(images, "available_memory", lambda: 12 * 16 * 4 - 1)
    with pytest.raises(DataError, match=r"a\.png: 16x12 = 192 pixels is too large to decode "
                                        r"in memory$"):
        read_image(tmp_path / "a.png", max_pixels=None)
    monkeypatch.setattr(images, "available_memory", lambda: 12 * 16 * 4)
    assert read_image(tmp_path / "a.png", max_pixels=None).size == (16, 12)


def test_a_failed_allocation_is_one_line(tmp_path):
    """Where the allocation of a 100000x100000 image does fail (MemoryError): for real, in a
    child process whose address space is capped at 1.5 GB."""
    pytest.importorskip("resource")  # POSIX only
    bomb = tmp_path / "bomb.png"
    code = f"""
import resource, struct, sys, zlib
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
from srgrad.data import images
from srgrad.data.images import read_image
from srgrad.errors import DataError
images.available_memory = lambda: None  # not known: the allocation is tried
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
rows = zlib.compress(b"\\0" * 300001 * 4)
Path({str(bomb)!r}).write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr)
                                + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
try:
    read_image({str(bomb)!r}, max_pixels=None)
except DataError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"{bomb}: 100000x100000 = 10,000,000,000 pixels is too large to "
                           "decode in memory\n")


def test_the_pixel_limit_line_says_what_to_do(tmp_path):
    Image.fromarray(rgb()).save(tmp_path / "small.png")
    with pytest.raises(DataError, match=r"\(decompression-bomb guard\); crop it$"):
        read_image(tmp_path / "small.png", max_pixels=100, hint="crop it")


def test_to_8bit_rounds_16_bits_to_the_nearest_level():
    wide = np.array([0, 128, 129, 257, 385, 386, 65406, 65407, 65535], np.uint16)
    np.testing.assert_array_equal(images.to_8bit(wide), [0, 0, 1, 1, 1, 2, 254, 255, 255])
    same = rgb()
    assert images.to_8bit(same) is same
    with pytest.raises(TypeError):
        images.to_8bit(wide.astype(np.float32))


@pytest.mark.parametrize(("name", "side", "limit"), [("x.webp", 16384, 16383),
                                                      ("x.jpg", 65501, 65500)])
def test_format_size_limits_are_one_line_before_encoding(tmp_path, name, side, limit):
    pixels = np.zeros((1, side), np.uint8)
    fmt = "WEBP" if name.endswith("webp") else "JPEG"
    with pytest.raises(DataError) as info:
        write_image(tmp_path / name, pixels)
    assert str(info.value) == (f"{tmp_path / name}: {side}x1 is over {fmt}'s limit of {limit} "
                               "pixels a side; use --format png")
    assert list(tmp_path.iterdir()) == []
    write_image(tmp_path / name, pixels[:, :limit])  # at the limit: written


def test_available_memory_is_bounded_by_the_containers_cgroup(tmp_path, monkeypatch):
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.setattr(images, "CGROUP_MEMORY", ((str(limit), str(usage)),))
    limit.write_text("max\n")
    usage.write_text("100\n")
    host = images.available_memory()
    assert host is not None and host > 1000  # no limit: the host's figure
    limit.write_text("1100\n")
    assert images.available_memory() == 1000  # limit minus usage
    limit.write_text(str(2**63 - 4096))  # cgroup v1's "no limit"
    assert images.available_memory() > 10**6
