"""`srgrad upscale` end to end through a small Typer app (typer.testing.CliRunner)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgrad.cli import export_cmd, upscale_cmd
from srgrad.models import weights as weights_mod
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights

from helpers import cli_app, error_lines, install_shipped, one_error, runner
from test_images import png16
from test_infer import overflowing_weights

app = cli_app(("upscale", upscale_cmd.upscale), ("export", export_cmd.export))


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    """Random sedsr-grad x2 weights, also installed as the only shipped weights."""
    return install_shipped(monkeypatch, tmp_path / "shipped", {2: 0}) / "sedsr-grad_x2.safetensors"


def photo(path: Path, size: tuple[int, int] = (20, 14), mode: str = "RGB") -> Path:
    arr = np.random.default_rng(len(path.name)).integers(0, 256, (size[1], size[0], 4), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGBA").convert(mode).save(path)
    return path


def bomb(path: Path, side: int = 100_000) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def run(*args: str | Path):
    result = runner.invoke(app, ["upscale", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_folder_recursive_into_output_folder(tmp_path, weights):
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "sub" / "b.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not an image suffix: ignored in folders")
    result = run(tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "a_x2.png").size == (40, 28)
    assert Image.open(tmp_path / "out" / "sub" / "b_x2.jpg").format == "JPEG"
    assert "2 written, 0 skipped, 0 failed" in result.output
    again = run(tmp_path / "in", "-o", tmp_path / "out")
    assert again.exit_code == 3 and "0 written, 2 skipped, 0 failed" in again.output
    assert sum("exists (pass --force" in line for line in again.output.splitlines()) == 2
    forced = run(tmp_path / "in", "-o", tmp_path / "out", "--force", "--format", "webp")
    assert forced.exit_code == 0 and (tmp_path / "out" / "sub" / "b_x2.webp").is_file()


def test_outputs_beside_inputs_are_not_upscaled_again(tmp_path, weights):
    photo(tmp_path / "a.png", mode="L")
    assert run(tmp_path).exit_code == 0
    out = tmp_path / "a_x2.png"
    assert Image.open(out).mode == "L" and Image.open(out).size == (40, 28)
    again = run(tmp_path)
    assert "left out 1 file(s) named like outputs" in again.output
    assert not (tmp_path / "a_x2_x2.png").exists()
    assert run(out).exit_code == 0 and (tmp_path / "a_x2_x2.png").is_file()  # when named


def test_single_file_output_path_and_alpha(tmp_path, weights):
    src = photo(tmp_path / "a.png", mode="RGBA")
    result = run(src, "-o", tmp_path / "result.webp", "--tile", "32")
    assert result.exit_code == 0, result.output
    out = Image.open(tmp_path / "result.webp")
    assert out.format == "WEBP" and out.mode == "RGBA" and out.size == (40, 28)
    jpg = run(src, "--format", "jpg")
    assert jpg.exit_code == 1 and "JPEG cannot store transparency" in jpg.output
    assert not (tmp_path / "a_x2.jpg").exists()


def test_bad_inputs_fail_alone(tmp_path, weights):
    folder = tmp_path / "in"
    photo(folder / "good.png")
    (folder / "text.png").write_text("hello")
    truncated = photo(folder / "truncated.png", (64, 64))
    truncated.write_bytes(truncated.read_bytes()[:-300])
    (folder / "empty.png").write_bytes(b"")
    bomb(folder / "bomb.png")
    photo(folder / "big.png", (30, 30))
    result = run(folder, tmp_path / "missing.png", "-o", tmp_path / "out", "--max-pixels", "500")
    assert result.exit_code == 1
    errors = error_lines(result.output)
    for name in ("text.png", "truncated.png", "empty.png", "bomb.png", "big.png", "missing.png"):
        assert sum(name in line for line in errors) == 1, (name, result.output)
    assert "--max-pixels" in next(line for line in errors if "big.png" in line)
    assert "1 written, 0 skipped, 6 failed" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_x2.png"]
    assert no_temp_files(tmp_path)


def test_default_pixel_limit_is_pillows(tmp_path, weights):
    result = run(bomb(tmp_path / "bomb.png"))
    assert result.exit_code == 1 and "decompression-bomb guard" in result.output
    assert "89,478,485" in result.output


def test_folder_with_no_images(tmp_path, weights):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    result = run(tmp_path / "empty")
    assert result.exit_code == 1
    assert error_lines(result.output) == [f"error: {tmp_path / 'empty'}: folder has no images "
                                          "(.png, .jpg, .jpeg, .webp, ...)"]


def test_unwritable_output_folder(tmp_path, weights):
    src = photo(tmp_path / "a.png")
    (tmp_path / "file").write_text("not a folder")
    result = run(src, "-o", tmp_path / "file" / "out")
    assert result.exit_code == 2
    assert error_lines(result.output) == [
        f"error: -o {tmp_path / 'file' / 'out'}: {tmp_path / 'file'} is a file, so no folder can "
        "be made under it; name another -o"]


def test_write_failure_leaves_nothing(tmp_path, weights, monkeypatch):
    src = photo(tmp_path / "a.png")

    def full_disk(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    result = run(src)
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "shipped"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "sedsr-grd"], "unknown model 'sedsr-grd' (did you mean 'sedsr-grad'?)"),
        (["--scale", "3"], "no shipped weights for sedsr-grad x3 (shipped for sedsr-grad: x2)"),
        (["--model", "edsr"], "no shipped weights for edsr (shipped: sedsr-grad x2)"),
        (["--scale", "5"], "scale must be one of (2, 3, 4)"),
        (["--weights", "W", "--model", "sedsr"], "--model and --weights cannot be used together"),
        (["--weights", "W", "--scale", "4"], "holds a x2 sedsr-grad model, not x4"),
        (["--weights", "nothing.safetensors"], "nothing.safetensors does not exist"),
        (["--weights", "DIR"], "is a folder, not a weights file; pass a .safetensors file"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
        (["--precision", "fp64"], "--precision must be one of auto, fp32, bf16, fp16"),
        (["--format", "gif"], "--format must be png, jpg or webp"),
        (["-o", "OUT_PNG", "--format", "jpg"], "names a PNG file but --format jpg asks for JPEG"),
        (["--tile", "0"], "--tile must be at least 32 (LR pixels), got 0"),
        (["--tile", "3"], "--tile must be at least 32 (LR pixels), got 3: each tile also "
                          "computes 21 pixels of overlap on every side"),
        (["--max-pixels", "-1"], "--max-pixels must be positive"),
        (["--png-level", "10"], "--png-level must be 0-9"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_option_errors_are_one_line(tmp_path, weights, args, message):
    src = photo(tmp_path / "a.png")
    out_png = tmp_path / "y.png"
    args = [{"W": str(weights), "DIR": str(tmp_path), "OUT_PNG": str(out_png)}.get(a, a)
            for a in args]
    one_error(run(src, *args), message)
    assert not (tmp_path / "a_x2.png").exists() and not out_png.exists()


def test_weights_file_sets_the_scale(tmp_path, weights, monkeypatch):
    monkeypatch.setattr(weights_mod, "weights_dirs", lambda: [])
    torch.manual_seed(1)
    x3 = tmp_path / "x3.safetensors"
    save_weights(build_model("sedsr", 3), model_config("sedsr", 3), x3)
    result = run(photo(tmp_path / "a.jpg"), "--weights", x3)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "a_x3.jpg").size == (60, 42)


def test_clashing_outputs(tmp_path, weights):
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "a.jpg")
    result = run(tmp_path / "in", "--format", "png")
    assert result.exit_code == 1 and "is also the output of" in result.output
    assert (tmp_path / "in" / "a_x2.png").is_file()


def test_png_level_trades_size_for_speed(tmp_path, weights):
    """Level 1 (the default) and 0 are real zlib levels: same pixels, different sizes."""
    src = photo(tmp_path / "a.png", size=(40, 30))
    sizes = {}
    for level in (None, "0", "1", "9"):
        out = tmp_path / f"out_{level}.png"
        result = run(src, "-o", str(out), *(["--png-level", level] if level else []))
        assert result.exit_code == 0, result.output
        sizes[level] = out.stat().st_size
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(
            tmp_path / "out_None.png")))
    assert sizes[None] == sizes["1"]
    assert sizes["0"] > sizes["1"] >= sizes["9"]


def test_outputs_written_in_the_background_keep_order_and_errors(tmp_path, weights):
    """The writer thread encodes one image while the next computes: outcomes still come in
    input order, a failed read or write fails that file only, and every good file is written."""
    from srgrad.inference.files import upscale_paths

    good1, good2 = photo(tmp_path / "a.png"), photo(tmp_path / "c.png")
    broken = tmp_path / "b.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    blocked = tmp_path / "out" / "d_x2.png"
    blocked.mkdir(parents=True)  # a folder where d's output file should go: its write fails
    good3 = photo(tmp_path / "d.png")
    seen = []
    report = upscale_paths([good1, broken, good2, good3], out=tmp_path / "out", force=True,
                           on_done=lambda o: seen.append((o.source.name, o.status)))
    assert seen == [("a.png", "written"), ("b.png", "failed"), ("c.png", "written"),
                    ("d.png", "failed")]
    assert [o.status for o in report.outcomes] == [s for _, s in seen]
    for name in ("a_x2.png", "c_x2.png"):
        assert Image.open(tmp_path / "out" / name).size == (40, 28)


def test_exit_status_tells_nothing_written_from_done(tmp_path, weights):
    """0: something written; 3: nothing written, nothing failed (all skipped); 1: a failure,
    whatever else happened. The help lists them."""
    src = photo(tmp_path / "a.png")
    assert run(src).exit_code == 0
    skipped = run(src)
    assert skipped.exit_code == 3 and "0 written, 1 skipped, 0 failed" in skipped.output
    mixed = run(src, tmp_path / "missing.png")
    assert mixed.exit_code == 1 and "0 written, 1 skipped, 1 failed" in mixed.output
    photo(tmp_path / "b.png")
    assert run(src, tmp_path / "b.png").exit_code == 0  # b written, a skipped
    help_text = " ".join(runner.invoke(app, ["upscale", "--help"]).output.split())
    assert "3 nothing written and nothing failed" in help_text


def test_the_same_input_twice_is_upscaled_once(tmp_path, weights):
    src = photo(tmp_path / "in" / "a.png")
    again = tmp_path / "in" / ".." / "in" / "a.png"
    for args in ([src, src], [src, again], [tmp_path / "in", src]):
        result = run(*args, "--force")
        assert result.exit_code == 0, result.output
        assert "1 written, 0 skipped, 0 failed" in result.output and not error_lines(result.output)
    one = run(src, src, "-o", tmp_path / "one.png")  # still one input: -o may name the file
    assert one.exit_code == 0 and (tmp_path / "one.png").is_file()


@pytest.mark.parametrize(
    ("inputs", "out", "message"),
    [
        (["a.png", "b.png"], "x.png", "-o {out} names an image file, but 2 inputs need an output "
                                      "folder; name a folder with -o"),
        (["in"], "x.png", "-o {out} names an image file, but the input {in} is a folder"),
        (["a.png"], "out.gif", "-o {out}: srgrad cannot write .gif images; name a .png, .jpg or "
                               ".webp file (or a folder)"),
        (["a.png", "b.png"], "notes.txt", "-o {out} is a file, not a folder"),
        (["a.png"], "b.txt", "-o {out}: srgrad cannot write .txt images; name a .png, .jpg or "
                             ".webp file, or a folder (a new one without a suffix)"),
        (["a.png"], "a.png/x.png", "-o {out}: {a} is a file, so no folder can be made under it"),
        (["a.png", "in"], "notes.txt/sub/out", "-o {out}: {notes} is a file, so no folder can "
                                               "be made under it"),
    ],
)
def test_output_paths_that_cannot_be_are_one_error_before_any_work(tmp_path, weights, inputs,
                                                                    out, message):
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png")
    photo(tmp_path / "in" / "c.png")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    before = sorted(tmp_path.rglob("*"))
    result = run(*(tmp_path / name for name in inputs), "-o", tmp_path / out)
    one_error(result, message.format(out=tmp_path / out, a=tmp_path / "a.png",
                                     notes=tmp_path / "notes.txt", **{"in": tmp_path / "in"}))
    assert sorted(tmp_path.rglob("*")) == before  # no folder named x.png, nothing written


def test_an_output_is_never_an_input(tmp_path, weights):
    src = photo(tmp_path / "a.png")
    before = src.read_bytes()
    result = run(src, "-o", src, "--force")
    assert result.exit_code == 1
    assert error_lines(result.output) == [f"error: {src}: its output {src} is one of the inputs, "
                                          "which srgrad never overwrites; use --format or -o"]
    assert src.read_bytes() == before
    named = photo(tmp_path / "a_x2.png")  # a's default output, given as an input too
    kept = named.read_bytes()
    result = run(src, named, "--force")
    assert result.exit_code == 1 and "a_x2.png is one of the inputs" in result.output
    assert named.read_bytes() == kept and (tmp_path / "a_x2_x2.png").is_file()


def test_emulated_bf16_is_said_in_one_line_and_the_image_is_still_written(tmp_path, weights,
                                                                           monkeypatch):
    from srgrad.models import precision as prec

    monkeypatch.setattr(prec, "cpu_bf16_flags", lambda: ())
    src = photo(tmp_path / "a.png")
    result = run(src, "--precision", "bf16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "bf16 is emulated" in line]
    assert len(said) == 1 and said[0].startswith("warning: "), result.output
    assert "precision.py" not in result.output and "UserWarning" not in result.output
    assert (tmp_path / "a_x2.png").exists()


def test_an_animation_says_that_only_its_first_frame_is_upscaled(tmp_path, weights):
    frames = [Image.open(photo(tmp_path / ("f" * i + ".png"))).convert("RGB") for i in (1, 2, 3)]
    src = tmp_path / "anim.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:])
    result = run(src, "-o", tmp_path / "anim_x2.png")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "frames" in line]
    assert said == [f"warning: {src}: 3 frames (an animation or a multi-page file); only the "
                    "first is used"], result.output
    assert Image.open(tmp_path / "anim_x2.png").size == (40, 28)


def test_a_folder_with_a_suffix_is_still_a_folder_where_it_can_only_be_one(tmp_path, weights):
    """`-o out.d` names a folder when it exists, or when several inputs or a folder need one."""
    a, b = photo(tmp_path / "a.png"), photo(tmp_path / "b.png")
    (tmp_path / "had.d").mkdir()
    for inputs, out in (([a], "had.d"), ([a, b], "new.d"), ([tmp_path / "in"], "in.d")):
        photo(tmp_path / "in" / "c.png")
        result = run(*inputs, "-o", tmp_path / out)
        assert result.exit_code == 0, result.output
        assert (tmp_path / out).is_dir() and list((tmp_path / out).glob("*_x2.png"))


def test_a_model_whose_output_is_not_finite_fails_each_input_and_writes_nothing(tmp_path,
                                                                                weights):
    huge = overflowing_weights(weights, tmp_path / "huge.safetensors")
    a, b = photo(tmp_path / "a.png"), photo(tmp_path / "b.png")
    result = run(a, b, "--weights", huge, "-o", tmp_path / "out", "--precision", "fp32")
    assert result.exit_code == 1, result.output
    said = ": the model's output is not finite (NaN or inf): the weights are unusable or " \
           "overflow in fp32; use other weights"
    assert error_lines(result.output) == [f"error: {a}{said}", f"error: {b}{said}"]
    assert "0 written, 0 skipped, 2 failed" in result.output
    assert "warning" not in result.output  # numpy's "invalid value encountered in cast"
    assert not list((tmp_path / "out").rglob("*"))


def test_16bit_color_says_that_its_output_is_8bit(tmp_path, weights):
    src = png16(tmp_path / "deep.png", np.linspace(0, 65535, 240).reshape(8, 10, 3))
    gray = tmp_path / "gray16.png"
    Image.fromarray(np.arange(80, dtype=np.uint16).reshape(8, 10) * 800).save(gray)
    result = run(src, gray, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert said == [f"warning: {src}: 16 bits per color channel, read as 8 (Pillow has no "
                    "16-bit color mode); the output is 8-bit per channel"], result.output
    assert Image.open(tmp_path / "out" / "deep_x2.png").mode == "RGB"
    assert Image.open(tmp_path / "out" / "gray16_x2.png").mode.startswith("I;16")


def test_an_image_a_few_pixels_wide_is_upscaled_with_a_word_on_its_borders(tmp_path, weights):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 3), (95, 130, 194)).save(tiny)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (12, 8), (95, 130, 194)).save(wide)
    result = run(tiny, wide, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert said == [f"warning: {tiny}: 12x3 pixels; at this size the network's borders "
                    "(about 2 pixels a side, where it sees zero padding) are most of the "
                    "output"], result.output
    assert Image.open(tmp_path / "out" / "tiny_x2.png").size == (24, 6)
