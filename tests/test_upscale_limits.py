"""`srgrad upscale` past the limits of memory and of output formats: one line for the file
that cannot be done, the other inputs still processed (exit 1)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from srgrad.cli import upscale_cmd
from srgrad.data import images

from helpers import cli_app, error_lines, install_shipped, runner

app = cli_app(("upscale", upscale_cmd.upscale))


@pytest.fixture(autouse=True)
def weights(tmp_path, monkeypatch) -> Path:
    """Random sedsr-grad x2 weights, installed as the only shipped weights."""
    return install_shipped(monkeypatch, tmp_path / "shipped", {2: 0}) / "sedsr-grad_x2.safetensors"


def run(*args: str | Path):
    result = runner.invoke(app, ["upscale", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def image(path: Path, width: int = 20, height: int = 14) -> Path:
    rng = np.random.default_rng(width * height)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(path)
    return path


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG claiming side x side RGB pixels with a few rows of data: decoding it has to
    allocate the whole image first."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * side) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows)
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("memory", ["known", "unknown"])
def test_max_pixels_0_on_a_bomb_is_one_line_and_the_rest_is_done(tmp_path, monkeypatch, memory):
    """--max-pixels 0 switches the guard off; the bomb's 40 GB then do not fit. Where the
    memory left is known (Linux) the bomb is refused before decoding; where it is not, Pillow
    raises MemoryError when its allocator fails (as under `ulimit -v`, see test_images): here
    the allocation fails on purpose, so that no test allocates 40 GB."""
    first, bomb, last = image(tmp_path / "a.png"), bomb_png(tmp_path / "b.png"), \
        image(tmp_path / "c.png")
    monkeypatch.setattr(images, "available_memory",
                        (lambda: 8 << 30) if memory == "known" else (lambda: None))
    prepare = ImageFile.ImageFile.load_prepare

    def allocate(self):
        if self.size[0] * self.size[1] > 10**9:
            assert memory == "unknown", "a bomb that cannot fit was allocated"
            raise MemoryError
        prepare(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", allocate)
    result = run(first, bomb, last, "--max-pixels", "0", "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert error_lines(result.output) == [
        f"error: {bomb}: 100000x100000 = 10,000,000,000 pixels is too large to decode in memory"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x2.png", "c_x2.png"]
    assert "2 written, 0 skipped, 1 failed" in result.output


def test_webp_over_its_size_limit_is_one_line_and_the_rest_is_done(tmp_path):
    wide = image(tmp_path / "a.png", width=8200, height=2)  # x2: 16400 > 16383 pixels
    small = image(tmp_path / "b.png")
    result = run(wide, small, "--format", "webp", "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert error_lines(result.output) == [
        f"error: {tmp_path / 'out' / 'a_x2.webp'}: 16400x4 is over WEBP's limit of 16383 "
        "pixels a side; use --format png"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b_x2.webp"]  # no temp file
    assert "1 written, 0 skipped, 1 failed" in result.output
