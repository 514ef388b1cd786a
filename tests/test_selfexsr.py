"""srgrad download benchmark --from FOLDER: importing a jbhuang0604/SelfExSR checkout, and
--from a repacked benchmark.tar (md5 differs, members checked)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgrad.cli import download_cmd
from srgrad.data import download as dl
from srgrad.data.datasets import eval_pairs, load_pair, load_rgb
from srgrad.data.resize import bicubic_downscale, imresize, modcrop

from helpers import cli_app, one_error, runner

# (height, width, channels) of the original images. None of the sizes is a multiple of every
# scale, so each SRF folder's HR is cropped differently; for (9, 13) the largest HR is the
# x3 one (9x12), as for BSD100, elsewhere the x2 one. One image is grayscale (like bridge).
SET5 = [(9, 13, 3), (14, 11, 3), (17, 19, 3), (13, 13, 1), (23, 10, 3)]
URBAN = [(20, 28, 3), (24, 16, 3)]  # Urban100-like: SRF_2 holds half-size copies


def image(seed: int, h: int, w: int, c: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_checkout(base: Path) -> dict[str, list[np.ndarray]]:
    """A SelfExSR checkout at ``base`` (``base/data/<Set>/image_SRF_<s>/...``); returns the
    original images of each set."""
    data = base / "data"
    originals = {"Set5": [image(i, *shape) for i, shape in enumerate(SET5)],
                 "Urban100": [image(50 + i, *shape) for i, shape in enumerate(URBAN)]}
    for i, full in enumerate(originals["Set5"], 1):
        for s in (2, 3, 4):
            folder = data / "Set5" / f"image_SRF_{s}"
            save(folder / f"img_{i:03d}_SRF_{s}_HR.png", modcrop(full, s))
            save(folder / f"img_{i:03d}_SRF_{s}_LR.png", bicubic_downscale(full, s))
    for i, full in enumerate(originals["Urban100"], 1):
        folder = data / "Urban100"
        lr = bicubic_downscale(full, 4)
        save(folder / "image_SRF_4" / f"img_{i:03d}_SRF_4_HR.png", modcrop(full, 4))
        save(folder / "image_SRF_4" / f"img_{i:03d}_SRF_4_LR.png", lr)
        save(folder / "image_SRF_2" / f"img_{i:03d}_SRF_2_HR.png", imresize(full, 0.5))
        save(folder / "image_SRF_2" / f"img_{i:03d}_SRF_2_LR.png", lr)
    (data / "Urban100" / "source_selected.xlsx").write_bytes(b"not an image")
    (data / "Sun-Hays80" / "image_SRF_8").mkdir(parents=True)
    return originals


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    monkeypatch.setitem(dl.BENCHMARK_SETS, "Urban100", len(URBAN))
    base = tmp_path / "SelfExSR"
    return base, make_checkout(base)


def cli(*args: str):
    return runner.invoke(cli_app(("download", download_cmd.download)), ["download", *args])


def files_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def expected_files(scales=(2, 3, 4)) -> set[str]:
    out = {f"benchmark/Set5/HR/img_{i:03d}.png" for i in range(1, 6)}
    out |= {f"benchmark/Set5/LR_bicubic/X{s}/img_{i:03d}x{s}.png"
            for i in range(1, 6) for s in scales}
    out |= {f"benchmark/Urban100/HR/img_{i:03d}.png" for i in (1, 2)}
    if 4 in scales:
        out |= {f"benchmark/Urban100/LR_bicubic/X4/img_{i:03d}x4.png" for i in (1, 2)}
    return out


def assert_clean(root: Path) -> None:
    """No staging folder left in <root>/.downloads."""
    assert not any((root / ".downloads").iterdir())


# --------------------------------------------------------------------------- importing
@pytest.mark.parametrize("give", ["repository", "data"])
def test_import_is_read_by_eval(checkout, tmp_path, give):
    base, originals = checkout
    root = tmp_path / "root"
    result = cli("benchmark", "--root", str(root), "--from",
                 str(base if give == "repository" else base / "data"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Set5: imported 5 images (HR, X2, X3, X4)" in out
    assert "Urban100: imported 2 images (HR, X4)" in out
    assert "image_SRF_2 holds the images at a smaller size (img_001: HR 14x10, not 28x20)" in out
    assert "x3 is not in Urban100" in out and "Set14: no Set14 folder" in out
    assert "done: 2 set(s) imported, 0 already present" in out
    assert files_under(root) == expected_files()
    assert_clean(root)
    src = base / "data"
    for key, name in (("set5", "Set5"), ("urban100", "Urban100")):
        for s in (2, 3, 4):
            pairs = eval_pairs(key, s, root)
            assert [p.name for p in pairs] == [f"img_{i:03d}" for i in
                                               range(1, len(originals[name]) + 1)]
            for pair, full in zip(pairs, originals[name], strict=True):
                lr, hr = load_pair(pair, s)
                np.testing.assert_array_equal(hr, modcrop(full, s))  # the largest HR was kept
                assert lr.shape == (hr.shape[0] // s, hr.shape[1] // s) + hr.shape[2:]
                if name == "Urban100" and s != 4:  # not imported: eval makes it by bicubic
                    assert pair.lr_path is None
                    continue
                srf = src / name / f"image_SRF_{s}" / f"{pair.name}_SRF_{s}_LR.png"
                assert pair.lr_path.read_bytes() == srf.read_bytes()
    # (9, 13) has its largest HR (9x12) in image_SRF_3: that file was kept, byte for byte
    kept = root / "benchmark/Set5/HR/img_001.png"
    assert kept.read_bytes() == (src / "Set5/image_SRF_3/img_001_SRF_3_HR.png").read_bytes()
    assert load_rgb(root / "benchmark/Set5/HR/img_004.png").ndim == 2  # grayscale stays


def test_rerun_skips_and_incomplete_set_is_rebuilt(checkout, tmp_path):
    base, _ = checkout
    root = tmp_path / "root"
    result = cli("benchmark", "--root", str(root), "--from", str(base), "--scales", "2")
    assert result.exit_code == 0, result.output
    assert files_under(root) == expected_files((2,))
    hr = root / "benchmark/Set5/HR/img_002.png"
    stamp = hr.stat().st_mtime_ns
    result = cli("benchmark", "--root", str(root), "--from", str(base), "--scales", "2")
    assert result.exit_code == 0, result.output
    assert "Set5: already installed" in result.output
    assert "Urban100: already installed" in result.output  # X2 is not importable: complete
    assert "done: 0 set(s) imported, 2 already present" in result.output
    assert hr.stat().st_mtime_ns == stamp
    # x3 added: Set5 is rebuilt with X2 (it had it) and X3; Urban100 has no x3: skipped
    result = cli("benchmark", "--root", str(root), "--from", str(base), "--scales", "3")
    assert result.exit_code == 0, result.output
    assert "Set5: imported 5 images (HR, X2, X3)" in result.output
    assert "Urban100: already installed" in result.output
    assert files_under(root) == expected_files((2, 3)) - {
        f"benchmark/Urban100/LR_bicubic/X4/img_00{i}x4.png" for i in (1, 2)}
    (root / "benchmark/Set5/LR_bicubic/X3/img_005x3.png").unlink()  # now incomplete
    result = cli("benchmark", "--root", str(root), "--from", str(base), "--scales", "3")
    assert "Set5: imported 5 images (HR, X2, X3)" in result.output
    assert (root / "benchmark/Set5/LR_bicubic/X3/img_005x3.png").is_file()
    assert_clean(root)


# --------------------------------------------------------------------------- errors
def corrupt(src: Path, kind: str) -> str:
    """Break the checkout; returns the file the error must name."""
    folder = src / "data" / "Set5"
    if kind == "corrupt_png":  # a truncated PNG: the header reads, the pixels do not
        path = folder / "image_SRF_3/img_002_SRF_3_LR.png"
        path.write_bytes(path.read_bytes()[:-40])
    elif kind == "not_png":
        path = folder / "image_SRF_2/img_003_SRF_2_HR.png"
        path.write_bytes(b"\x89PNG garbage")
    elif kind == "lr_size":
        path = folder / "image_SRF_4/img_005_SRF_4_LR.png"
        save(path, image(9, 3, 2, 3))  # its HR (22x10 kept) needs a 5x2 (HxW) LR at x4
    elif kind == "missing_hr":
        path = folder / "image_SRF_3/img_004_SRF_3_HR.png"
        path.unlink()
    elif kind == "other_image":  # the x4 HR is not a crop of the largest HR
        path = folder / "image_SRF_4/img_003_SRF_4_HR.png"
        save(path, image(99, 16, 16, 3))
    elif kind == "lr_channels":
        path = folder / "image_SRF_2/img_001_SRF_2_LR.png"
        save(path, image(9, 4, 6, 1))
    return str(path)


KINDS = ["corrupt_png", "not_png", "lr_size", "missing_hr", "other_image", "lr_channels"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_file_is_one_line_and_installs_nothing_of_the_set(checkout, tmp_path, kind):
    base, _ = checkout
    root = tmp_path / "root"
    old = root / "benchmark/Set5/HR/old.png"  # an incomplete earlier install stays untouched
    save(old, image(1, 4, 4, 3))
    named = corrupt(base, kind)
    result = cli("benchmark", "--root", str(root), "--from", str(base))
    line = one_error(result, named, "nothing of Set5 was installed")
    assert result.exception is None or isinstance(result.exception, SystemExit), line
    assert files_under(root) == {"benchmark/Set5/HR/old.png"}
    assert_clean(root)


def test_failure_in_a_later_set_keeps_the_earlier_ones(checkout, tmp_path):
    base, _ = checkout
    bad = base / "data/Urban100/image_SRF_4/img_002_SRF_4_LR.png"
    save(bad, image(3, 7, 7, 3))
    root = tmp_path / "root"
    result = cli("benchmark", "--root", str(root), "--from", str(base))
    one_error(result, str(bad), "nothing of Urban100 was installed")
    assert "Set5: imported 5 images" in result.output
    assert files_under(root) == {f for f in expected_files() if "/Set5/" in f}
    assert_clean(root)


def test_folder_without_sets_and_wrong_dataset(checkout, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error(cli("benchmark", "--root", str(tmp_path / "r"), "--from", str(empty)),
              "no SelfExSR benchmark set found", str(empty))
    base, _ = checkout
    one_error(cli("div2k", "--root", str(tmp_path / "r"), "--from", str(base)),
              "srgrad download benchmark --from FOLDER")
    assert not (tmp_path / "r" / "benchmark").exists()


# --------------------------------------------------------------------------- repacked archive
SMALL = {"Set5": ["baby", "bird"], "Set14": ["zebra"]}


def png_bytes(seed: int, h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image(seed, h, w, 3)).save(buf, format="PNG")
    return buf.getvalue()


def repacked_tar(path: Path, drop: str | None = None, junk: str | None = None) -> Path:
    entries = {}
    for set_name, names in SMALL.items():
        for i, n in enumerate(names):
            entries[f"benchmark/{set_name}/HR/{n}.png"] = png_bytes(i, 16, 16)
            for s in (2, 3, 4):
                entries[f"benchmark/{set_name}/LR_bicubic/X{s}/{n}x{s}.png"] = png_bytes(
                    10 + i, 16 // s, 16 // s)
    entries.pop(drop, None)
    if junk:
        entries[junk] = b"\x89PNG\r\n\x1a\n not really"
    with tarfile.open(path, "w") as tf:  # a repack: other order, so another md5
        for name in sorted(entries, reverse=True):
            info = tarfile.TarInfo(name)
            info.size = len(entries[name])
            tf.addfile(info, io.BytesIO(entries[name]))
    return path


@pytest.fixture
def small_table(monkeypatch):
    """The official table, its benchmark entry (official md5 kept) expecting SMALL's counts."""
    counts = {f"benchmark/{k}/{sub}": len(v) for k, v in SMALL.items()
              for sub in ["HR", *(f"LR_bicubic/X{s}" for s in (2, 3, 4))]}
    table = tuple(replace(s, folders=tuple(replace(f, count=counts[f.path])
                                           for f in s.folders if f.path in counts))
                  if s.name == "benchmark" else s for s in dl.SOURCES)
    monkeypatch.setattr(dl, "SOURCES", table)


def test_repacked_archive_is_installed_with_a_note(small_table, tmp_path):
    tar = repacked_tar(tmp_path / "benchmark.tar")
    root = tmp_path / "root"
    result = cli("benchmark", "--root", str(root), "--from", str(tar), "--scales", "2,4")
    assert result.exit_code == 0, result.output
    assert f"{tar} has md5 " in result.output and "not the official" in result.output
    assert "1 archive(s) installed" in result.output
    got = files_under(root)
    assert "benchmark/Set14/LR_bicubic/X4/zebrax4.png" in got
    assert len(got) == 3 * 3 and not any("X3" in f for f in got)


@pytest.mark.parametrize("fault", ["short", "junk", "not_tar"])
def test_repacked_archive_with_bad_members_is_refused(small_table, tmp_path, fault):
    if fault == "not_tar":
        tar = tmp_path / "benchmark.tar"
        tar.write_bytes(b"not the archive")
        needles = ["is not a readable tar archive"]
    elif fault == "short":
        tar = repacked_tar(tmp_path / "benchmark.tar",
                           drop="benchmark/Set5/LR_bicubic/X2/birdx2.png")
        needles = ["holds 1 files in benchmark/Set5/LR_bicubic/X2, expected 2"]
    else:
        tar = repacked_tar(tmp_path / "benchmark.tar", junk="benchmark/Set14/HR/extra.png")
        needles = ["member benchmark/Set14/HR/extra.png is not a readable image"]
    root = tmp_path / "root"
    result = cli("benchmark", "--root", str(root), "--from", str(tar), "--scales", "2")
    one_error(result, f"{tar} is not the official benchmark.tar", "nothing was installed",
              *needles)
    assert not (root / "benchmark").exists()
