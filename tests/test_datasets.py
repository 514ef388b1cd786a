"""Dataset discovery, evaluation pairs, training HR lists and the LR cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srgrad.data.datasets as ds
from srgrad.data.datasets import (
    EvalPair,
    cached_lr,
    eval_pairs,
    hr_training_paths,
    list_images,
    load_pair,
    load_rgb,
    lr_cache_path,
    resolve_root,
)
from srgrad.data.images import read_image, to_8bit
from srgrad.data.resize import bicubic_downscale
from srgrad.errors import DataError


def save(path: Path, shape=(26, 31, 3), seed: int = 0, mode: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    image = Image.fromarray(arr)
    if mode is not None:
        image = image.convert(mode)
    image.save(path)
    return arr


def make_benchmark(root: Path, set_name: str = "Set5", with_lr: bool = True) -> None:
    for i in range(2):
        hr = save(root / "benchmark" / set_name / "HR" / f"img_{i}.png", seed=i)
        if with_lr:
            lr = bicubic_downscale(hr, 2)
            lr_path = root / "benchmark" / set_name / "LR_bicubic" / "X2" / f"img_{i}x2.png"
            lr_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(lr).save(lr_path)


def test_resolve_root(monkeypatch, tmp_path):
    monkeypatch.delenv("SRGRAD_DATA", raising=False)
    assert resolve_root(None) == Path("datasets")
    monkeypatch.setenv("SRGRAD_DATA", str(tmp_path))
    assert resolve_root(None) == tmp_path
    assert resolve_root("elsewhere") == Path("elsewhere")


def test_eval_pairs_of_a_benchmark(tmp_path):
    make_benchmark(tmp_path)
    pairs = eval_pairs("SET5", 2, tmp_path)
    assert [p.name for p in pairs] == ["img_0", "img_1"]
    assert all(p.lr_path is not None and p.lr_path.is_file() for p in pairs)
    lr, hr = load_pair(pairs[0], 2)
    assert hr.shape == (26, 30, 3) and lr.shape == (13, 15, 3)
    assert [p.lr_path for p in eval_pairs("set5", 3, tmp_path)] == [None, None]


def test_lr_is_made_when_lr_bicubic_is_absent(tmp_path):
    make_benchmark(tmp_path, with_lr=False)
    pair = eval_pairs("set5", 3, tmp_path)[1]
    assert pair.lr_path is None
    lr, hr = load_pair(pair, 3)
    assert hr.shape == (24, 30, 3)
    np.testing.assert_array_equal(lr, bicubic_downscale(hr, 3))


def test_missing_sets_name_the_download_command(tmp_path):
    with pytest.raises(DataError) as info:
        eval_pairs("set14", 2, tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message and "Set14 not found under" in message
    assert f"srgrad download benchmark --root {tmp_path / 'data'}" in message
    with pytest.raises(DataError, match="srgrad download div2k"):
        eval_pairs("div2k-valid", 2, tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'set6'"):
        eval_pairs("set6", 2, tmp_path)
    with pytest.raises(DataError, match=f"folder {tmp_path}/nope does not exist"):
        eval_pairs(f"{tmp_path}/nope", 2, tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match=f"{tmp_path}/a.png is not a folder"):
        eval_pairs(f"{tmp_path}/a.png", 2, tmp_path)


def test_div2k_valid_layout(tmp_path):
    save(tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png")
    lr_dir = tmp_path / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2"
    save(lr_dir / "0801x2.png", shape=(13, 15, 3))
    (pair,) = eval_pairs("div2k-valid", 2, tmp_path)
    assert pair == EvalPair(
        "0801", tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png", lr_dir / "0801x2.png"
    )
    assert load_pair(pair, 2)[0].shape == (13, 15, 3)


def test_a_folder_is_a_dataset(tmp_path):
    save(tmp_path / "mine" / "b.PNG")
    save(tmp_path / "mine" / "sub" / "a.jpg")
    (tmp_path / "mine" / "notes.txt").write_text("x")
    pairs = eval_pairs(str(tmp_path / "mine"), 2, tmp_path / "unused")
    assert [p.name for p in pairs] == ["b"] and pairs[0].lr_path is None  # subfolders: asked
    pairs = eval_pairs(str(tmp_path / "mine"), 2, tmp_path / "unused", recursive=True)
    assert [p.name for p in pairs] == ["b", "sub/a"] and all(p.lr_path is None for p in pairs)
    with pytest.raises(DataError):
        eval_pairs(str(tmp_path / "mine" / "sub" / "nothing"), 2)


def test_a_folder_of_subfolders_says_recursive(tmp_path):
    save(tmp_path / "mine" / "sub" / "a.png")
    with pytest.raises(DataError, match=r"no images .* found in .*mine \(1 in its subfolders: "
                                        r"pass --recursive\)"):
        eval_pairs(str(tmp_path / "mine"), 2)


def test_names_that_would_clash_keep_their_suffix(tmp_path):
    save(tmp_path / "a.png")
    save(tmp_path / "a.jpg")
    save(tmp_path / "b.png")
    assert [p.name for p in eval_pairs(str(tmp_path), 2)] == ["a.jpg", "a.png", "b"]


def test_a_folder_in_the_benchmark_layout_is_read_as_one(tmp_path):
    """HR/ beside LR_bicubic/X2 and X4: the HR images once each, with their LR of the scale
    (not the LR files as more HR images: 2 images, not 6)."""
    make_benchmark(tmp_path, "Mine")
    set_dir = tmp_path / "benchmark" / "Mine"
    save(set_dir / "LR_bicubic" / "X4" / "img_0x4.png", shape=(6, 7, 3))
    save(set_dir / "LR_bicubic" / "X4" / "img_1x4.png", shape=(6, 7, 3))
    pairs = eval_pairs(str(set_dir), 2)
    assert [(p.name, p.hr_path.parent.name) for p in pairs] == [("img_0", "HR"), ("img_1", "HR")]
    assert [p.lr_path for p in pairs] == [set_dir / "LR_bicubic" / "X2" / f"img_{i}x2.png"
                                          for i in range(2)]
    assert [p.lr_path for p in eval_pairs(str(set_dir), 3)] == [None, None]  # made by bicubic
    assert len(eval_pairs(str(set_dir), 2, recursive=True)) == 2
    (set_dir / "HR" / "img_0.png").unlink()
    (set_dir / "HR" / "img_1.png").unlink()
    with pytest.raises(DataError, match=r"no images .* found in .*Mine/HR$"):
        eval_pairs(str(set_dir), 2)


def test_lr_of_the_wrong_size_is_a_data_error(tmp_path):
    hr = tmp_path / "hr.png"
    save(hr)
    lr = tmp_path / "lr.png"
    save(lr, shape=(10, 10, 3))
    with pytest.raises(DataError, match="lr.png"):
        load_pair(EvalPair("hr", hr, lr), 2)


def test_truncated_png_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    save(path, shape=(64, 64, 3))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError) as info:
        load_rgb(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="text.png"):
        load_pair(EvalPair("text", tmp_path / "text.png", None), 2)


def test_modes_are_normalised(tmp_path):
    save(tmp_path / "p.png", mode="P")
    save(tmp_path / "a.png", mode="RGBA")
    save(tmp_path / "c.jpg", mode="CMYK")
    for name in ("p.png", "a.png", "c.jpg"):
        img = load_rgb(tmp_path / name)
        assert img.dtype == np.uint8 and img.shape == (26, 31, 3), name
    gray = save(tmp_path / "g.png", shape=(9, 7))
    np.testing.assert_array_equal(load_rgb(tmp_path / "g.png"), gray)
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "w.png")
    assert load_rgb(tmp_path / "w.png").max() == 255


def test_16bit_is_known_by_the_mode_not_the_values(tmp_path):
    """A dark 16-bit image (every value <= 255) is still 16-bit: round(x * 255 / 65535)."""
    wide = np.array([[0, 128, 129, 255], [256, 385, 386, 65535]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "dark.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "dark.png"),
                                  [[0, 0, 1, 1], [1, 1, 2, 255]])
    Image.fromarray(wide[:1]).save(tmp_path / "darker.png")  # max 255: was read as 8-bit
    np.testing.assert_array_equal(load_rgb(tmp_path / "darker.png"), [[0, 0, 1, 1]])


def test_one_decoder_for_eval_train_and_upscale(tmp_path):
    """load_rgb (eval, train) is read_image (upscale) taken to 8 bits, alpha dropped: EXIF
    orientation applied, 16-bit rounded, palette and transparency as upscale reads them."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(save(tmp_path / "x.png", shape=(10, 30, 3))).save(
        tmp_path / "r.jpg", exif=exif, quality=100)
    Image.fromarray((np.arange(48).reshape(6, 8) * 1300).astype(np.uint16)).save(
        tmp_path / "w.png")
    save(tmp_path / "a.png", mode="RGBA")
    save(tmp_path / "p.png", mode="P")
    for name in ("r.jpg", "w.png", "a.png", "p.png"):
        ours = load_rgb(tmp_path / name)
        np.testing.assert_array_equal(ours, to_8bit(read_image(tmp_path / name).pixels), name)
    assert load_rgb(tmp_path / "r.jpg").shape == (30, 10, 3)


def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    save(bomb, shape=(30, 40, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow's limit, scaled down
    with pytest.raises(DataError) as info:
        load_rgb(bomb)
    message = str(info.value)
    assert message.startswith(f"{bomb}: 40x30 = 1,200 pixels") and "decompression-bomb" in message
    assert "--max-pixels" not in message  # eval and train have no such option
    with pytest.raises(DataError, match="bomb.png"):
        load_pair(EvalPair("bomb", bomb, None), 2)


def test_too_small_images(tmp_path):
    """Evaluation refuses an HR too small to score, naming it; training gets an empty LR
    (no cache file) and skips the image as smaller than a patch."""
    tiny = tmp_path / "tiny.png"
    save(tiny, shape=(1, 1, 3))
    with pytest.raises(DataError, match=r"tiny.png: 1x1 pixels is too small to score at x2"):
        load_pair(EvalPair("tiny", tiny, None), 2)
    save(tmp_path / "small.png", shape=(15, 40, 3))
    with pytest.raises(DataError, match=r"small.png: 40x15 pixels .* needs at least 16x16$"):
        load_pair(EvalPair("small", tmp_path / "small.png", None), 2, min_side=16)
    assert load_pair(EvalPair("small", tmp_path / "small.png", None), 2)[0].shape == (7, 20, 3)
    lr = cached_lr(tiny, load_rgb(tiny), 2, tmp_path / "cache")
    assert lr.shape == (0, 0, 3) and not (tmp_path / "cache").exists()


def test_list_images_is_sorted_recursive_and_case_insensitive(tmp_path):
    for name in ["b.png", "A.JPEG", "sub/c.webp", "sub/d.Tif", ".hidden.png", "x.gif"]:
        save(tmp_path / name)
    assert [p.name for p in list_images(tmp_path)] == ["A.JPEG", "b.png", "c.webp", "d.Tif"]
    assert list_images(tmp_path / "absent") == []


def test_hr_training_paths_layouts(tmp_path):
    save(tmp_path / "div2k" / "DIV2K_train_HR" / "0001.png")
    save(tmp_path / "div2k" / "DIV2K_train_LR_bicubic" / "X2" / "0001x2.png")
    make_benchmark(tmp_path / "bench", "Set5")
    save(tmp_path / "train" / "T91" / "HR" / "t1.png")
    save(tmp_path / "train" / "BSD200" / "HR" / "2092.png")
    save(tmp_path / "train" / "BSD200" / "LR" / "2092x2.png")
    save(tmp_path / "plain" / "x.png")
    assert [p.name for p in hr_training_paths([tmp_path / "div2k"])] == ["0001.png"]
    set_dir = tmp_path / "bench" / "benchmark" / "Set5"
    assert len(hr_training_paths([set_dir])) == 2
    names = [p.name for p in hr_training_paths([tmp_path / "train", tmp_path / "plain"])]
    assert names == ["2092.png", "t1.png", "x.png"]
    with pytest.raises(DataError, match="absent does not exist"):
        hr_training_paths([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no HR images"):
        hr_training_paths([tmp_path / "empty"])
    save(tmp_path / "selfexsr" / "image_SRF_2" / "img_001_SRF_2_HR.png")
    save(tmp_path / "selfexsr" / "image_SRF_2" / "img_001_SRF_2_LR.png")
    with pytest.raises(DataError, match="low-resolution images .*img_001_SRF_2_LR.png"):
        hr_training_paths([tmp_path / "selfexsr"])
    save(tmp_path / "mixed" / "a.png")
    save(tmp_path / "mixed" / "LR_bicubic" / "X2" / "ax2.png")
    with pytest.raises(DataError, match="1 in all"):
        hr_training_paths([tmp_path / "mixed"])


def test_shipped_sets(shared_datasets):
    root = shared_datasets
    assert len(eval_pairs("set14", 4, root)) == 14
    lr, hr = load_pair(eval_pairs("set14", 3, root)[2], 3)  # bridge is grayscale
    assert lr.ndim == 2 and hr.shape == (510, 510) and lr.shape == (170, 170)
    if (root / "train" / "T91").is_dir() and (root / "train" / "BSD200").is_dir():
        assert len(hr_training_paths([root / "train"])) == 291


def test_lr_cache_path_keys(tmp_path):
    hr = tmp_path / "img.png"
    save(hr)
    first = lr_cache_path(hr, 2, tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith("img_x2_")
    assert lr_cache_path(hr, 2, tmp_path / "cache") == first
    assert lr_cache_path(hr, 3, tmp_path / "cache") != first
    stat = hr.stat()
    os.utime(hr, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert lr_cache_path(hr, 2, tmp_path / "cache") != first


def test_lr_cache_path_depends_on_resize_version(tmp_path, monkeypatch):
    hr = tmp_path / "img.png"
    save(hr)
    before = lr_cache_path(hr, 2, tmp_path)
    monkeypatch.setattr(ds, "RESIZE_VERSION", 999)
    assert lr_cache_path(hr, 2, tmp_path) != before


def test_cached_lr_is_written_once_and_reused(tmp_path, monkeypatch):
    hr_path = tmp_path / "img.png"
    hr = save(hr_path, shape=(27, 30, 3))
    cache = tmp_path / "cache"
    lr = cached_lr(hr_path, hr, 3, cache)
    np.testing.assert_array_equal(lr, bicubic_downscale(hr, 3))
    assert [p.name for p in cache.iterdir()] == [lr_cache_path(hr_path, 3, cache).name]

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(ds, "bicubic_downscale", fail)
    np.testing.assert_array_equal(cached_lr(hr_path, hr, 3, cache), lr)


def test_damaged_cache_entry_is_recomputed(tmp_path):
    hr_path = tmp_path / "g.png"
    hr = save(hr_path, shape=(20, 22))
    target = lr_cache_path(hr_path, 2, tmp_path)
    target.write_bytes(b"garbage")
    lr = cached_lr(hr_path, hr, 2, tmp_path)
    assert lr.shape == (10, 11)
    np.testing.assert_array_equal(load_rgb(target), lr)
