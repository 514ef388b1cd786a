"""MATLAB bicubic imresize: golden values, a slow reference port, torch path, shipped LR files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgrad.data.resize import (
    RESIZE_VERSION,
    axis_weights,
    bicubic_downscale,
    imresize,
    modcrop,
)

# --- a slow reference written straight from the MATLAB algorithm, one output pixel at a time --


def ref_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def ref_reflect(i: int, n: int) -> int:
    """1-based index folded into 1..n by mirroring that repeats the edge sample."""
    while i < 1 or i > n:
        i = 1 - i if i < 1 else 2 * n + 1 - i
    return i


def ref_contributions(in_len: int, out_len: int, scale: float) -> list[list[tuple[int, float]]]:
    width = 4 / scale if scale < 1 else 4.0
    rows = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + p for p in range(math.ceil(width) + 2)]
        if scale < 1:
            w = [scale * ref_cubic(scale * (u - t)) for t in taps]
        else:
            w = [ref_cubic(u - t) for t in taps]
        total = sum(w)
        rows.append(
            [(ref_reflect(t, in_len) - 1, wi / total) for t, wi in zip(taps, w, strict=True)]
        )
    return rows


def ref_resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    src = np.moveaxis(img.astype(np.float64), axis, 0)
    out = np.zeros((out_len,) + src.shape[1:])
    for j, row in enumerate(ref_contributions(src.shape[0], out_len, scale)):
        for i, w in row:
            out[j] += w * src[i]
    return np.moveaxis(out, 0, axis)


def ref_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Rows first (equal scales), rounding to uint8 after each pass like MATLAB's mex."""
    out = img
    for axis in (0, 1):
        n = math.ceil(img.shape[axis] * scale - 1e-9)
        out = ref_resize_axis(out, axis, n, scale)
        if img.dtype == np.uint8:
            out = np.clip(np.floor(out + 0.5), 0, 255)
    return out.astype(img.dtype)


# --- golden values --------------------------------------------------------------------------


def test_x2_weights_are_the_known_antialiased_kernel():
    idx, w = axis_weights(8, 4, 0.5)
    expected = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256
    assert w.shape == (4, 8)
    np.testing.assert_allclose(w, np.tile(expected, (4, 1)), atol=1e-15)
    np.testing.assert_array_equal(idx[0], [2, 1, 0, 0, 1, 2, 3, 4])  # mirrored incl. the edge
    np.testing.assert_array_equal(idx[1], [0, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(idx[3], [3, 4, 5, 6, 7, 7, 6, 5])
    clamped, _ = axis_weights(8, 4, 0.5, "replicate")
    np.testing.assert_array_equal(clamped[0], [0, 0, 0, 0, 1, 2, 3, 4])


@pytest.mark.parametrize("scale", [0.25, 0.37, 0.5, 1 / 3, 1.7, 2, 3, 4])
def test_weight_rows_sum_to_one_and_are_in_range(scale):
    in_len = 23
    out_len = math.ceil(in_len * scale - 1e-9)
    idx, w = axis_weights(in_len, out_len, scale)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert idx.min() >= 0 and idx.max() < in_len
    assert np.any(w[:, 0] != 0) and np.any(w[:, -1] != 0)  # zero end columns dropped


@pytest.mark.parametrize("scale", [0.5, 0.37, 1.7, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_constant_image_stays_constant(scale, dtype):
    img = np.full((13, 9, 3), 77, dtype=dtype)
    out = imresize(img, scale)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, 77, atol=1e-9)


def test_ramp_is_reproduced_in_the_interior():
    ramp = np.tile(np.arange(1, 33, dtype=np.float64)[:, None], (1, 4))
    down = imresize(ramp, 0.5)[:, 0]
    np.testing.assert_allclose(down[3:-3], 2 * np.arange(4, 14) - 0.5, atol=1e-12)
    up = imresize(ramp, 2.0)[:, 0]
    x = np.arange(1, 65)
    np.testing.assert_allclose(up[4:-4], (x / 2 + 0.25)[4:-4], atol=1e-12)


def test_uint8_rounds_half_away_from_zero_and_clips():
    # One bright sample hits the 29/256 and 111/256 taps: exact ties 14.5 and 55.5.
    img = np.zeros((16, 4), dtype=np.uint8)
    img[5] = 128
    as_float = imresize(img.astype(np.float64), output_shape=(8, 4))[:, 0]
    np.testing.assert_allclose(as_float, [0, -4.5, 55.5, 14.5, -1.5, 0, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(
        imresize(img, output_shape=(8, 4))[:, 0], [0, 0, 56, 15, 0, 0, 0, 0]
    )


def test_4x4_downscale_matches_reference():
    img = np.array([[0, 50, 100, 150], [200, 250, 30, 80], [10, 20, 30, 40], [255, 0, 255, 0]])
    for dtype in (np.float64, np.uint8):
        out = imresize(img.astype(dtype), 0.5)
        expected = ref_imresize(img.astype(dtype), 0.5)
        assert out.shape == (2, 2)
        np.testing.assert_allclose(out, expected, atol=1e-10)


@pytest.mark.parametrize("scale", [0.25, 0.37, 0.5, 1 / 3, 1.7, 2, 3])
def test_any_scale_matches_reference_and_output_size_is_ceil(scale):
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, (11, 14, 2))
    out = imresize(img, scale)
    assert out.shape == (math.ceil(11 * scale - 1e-9), math.ceil(14 * scale - 1e-9), 2)
    np.testing.assert_allclose(out, ref_imresize(img, scale), atol=1e-9)
    img8 = img.astype(np.uint8)
    np.testing.assert_array_equal(imresize(img8, scale), ref_imresize(img8, scale))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (2, 3), (3, 1), (5, 4, 3)])
@pytest.mark.parametrize("scale", [0.1, 0.37, 0.5, 1.5, 4])
def test_tiny_images_fold_borders_like_the_reference(shape, scale):
    img = np.random.default_rng(5).uniform(0, 255, shape)
    out = imresize(img, scale)
    np.testing.assert_allclose(out, ref_imresize(img, scale), atol=1e-9)
    # uint8 runs in float32: an exact .5 tie may round the other way, nothing more
    diff = imresize(img.astype(np.uint8), scale).astype(int) - ref_imresize(
        img.astype(np.uint8), scale
    )
    assert np.abs(diff).max() <= 1


def test_output_size_of_exact_thirds():
    assert imresize(np.zeros((300, 9), np.uint8), 1 / 3).shape == (100, 3)
    assert imresize(np.zeros((10, 10), np.uint8), 0.37).shape == (4, 4)


def test_output_shape_resizes_smaller_scale_first():
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, (10, 12))
    out = imresize(img, output_shape=(15, 5))  # W shrinks more, so MATLAB does W first
    w_first = ref_resize_axis(ref_resize_axis(img, 1, 5, 5 / 12), 0, 15, 1.5)
    np.testing.assert_allclose(out, w_first, atol=1e-12)


def test_float_input_is_not_clipped_and_keeps_dtype():
    img = np.zeros((8, 8), np.float32)
    img[3:5, 3:5] = 1
    out = imresize(img, 2)
    assert out.dtype == np.float32 and out.min() < 0 and out.max() > 1


def test_uint16_round_clips():
    img = np.full((6, 6), 65535, np.uint16)
    img[0, 0] = 0
    out = imresize(img, 0.5)
    assert out.dtype == np.uint16 and out.max() == 65535


def test_torch_batched_matches_numpy():
    rng = np.random.default_rng(3)
    imgs = rng.uniform(0, 1, (2, 3, 17, 12))
    batch = imresize(torch.from_numpy(imgs), 0.37)
    assert batch.dtype == torch.float64 and batch.shape == (2, 3, 7, 5)
    for n in range(2):
        hwc = imresize(imgs[n].transpose(1, 2, 0), 0.37)
        np.testing.assert_allclose(batch[n].numpy().transpose(1, 2, 0), hwc, atol=1e-12)
    chw = imresize(torch.from_numpy(imgs[0]).float(), 3)
    assert chw.dtype == torch.float32 and chw.shape == (3, 51, 36)
    hw = imresize(torch.from_numpy(imgs[0, 0]), 1.7)
    np.testing.assert_allclose(hw.numpy(), imresize(imgs[0, 0], 1.7), atol=1e-12)


def test_torch_uint8_matches_numpy_uint8():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (20, 18, 3), dtype=np.uint8)
    out = imresize(torch.from_numpy(img.transpose(2, 0, 1).copy()), 0.5)
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy().transpose(1, 2, 0), imresize(img, 0.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 40, 33, dtype=torch.float64)
    out = imresize(x.cuda(), 0.25)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), imresize(x, 0.25))


def test_bad_arguments():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0.5, output_shape=(2, 2))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), -1)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0.5, border="wrap")


def test_modcrop_and_downscale_shapes():
    img = np.zeros((13, 10, 3), np.uint8)
    assert modcrop(img, 4).shape == (12, 8, 3)
    assert modcrop(torch.zeros(2, 3, 13, 10), 3).shape == (2, 3, 12, 9)
    assert bicubic_downscale(img, 3).shape == (4, 3, 3)
    assert isinstance(RESIZE_VERSION, int)


# --- the shipped benchmark LR files ---------------------------------------------------------


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _shipped(root: Path, set_name: str, scale: int):
    for hr_path in sorted((root / "benchmark" / set_name / "HR").glob("*.png")):
        lr_path = (
            root
            / "benchmark"
            / set_name
            / "LR_bicubic"
            / f"X{scale}"
            / f"{hr_path.stem}x{scale}.png"
        )
        yield hr_path.stem, np.asarray(Image.open(hr_path)), np.asarray(Image.open(lr_path))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
def test_downscale_matches_shipped_lr(shared_datasets, set_name, scale):
    root = shared_datasets
    for name, hr, lr in _shipped(root, set_name, scale):
        mine = bicubic_downscale(hr, scale)
        assert mine.shape == lr.shape, name
        assert _psnr(mine, lr) >= 50, name
        # The shipped files were made by a MATLAB release that clamps border indices; with that
        # border rule the port is byte-exact.
        np.testing.assert_array_equal(bicubic_downscale(hr, scale, border="replicate"), lr, name)
