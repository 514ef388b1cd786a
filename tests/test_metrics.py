"""PSNR/SSIM/Y conventions, and the bicubic rows of conventions.md reproduced end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from srgrad.data.resize import imresize, modcrop
from srgrad.errors import DataError
from srgrad.metrics import CONVENTIONS, min_side, psnr, rgb_to_y, score, ssim


def test_rgb_to_y_golden_values():
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    y = rgb_to_y(px)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[0], [235.0, 16.0, 81.481, 144.553, 40.966], atol=1e-9)


def test_rgb_to_y_keeps_grayscale():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(rgb_to_y(gray), gray)
    np.testing.assert_array_equal(rgb_to_y(gray[:, :, None]), gray)
    assert rgb_to_y(gray).dtype == np.float64


def test_psnr_values():
    a = np.zeros((4, 4), np.uint8)
    assert psnr(a, a) == math.inf  # identical images: infinite PSNR, by definition
    b = a + 1
    assert psnr(b, a) == pytest.approx(10 * math.log10(255**2))
    assert psnr(b.astype(float) / 255, a.astype(float) / 255, data_range=1) == pytest.approx(
        48.1308036, abs=1e-6
    )


def test_ssim_identical_is_one_and_shape_checked():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError):
        ssim(img, img[:-1])


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM as MATLAB's ssim_index computes it, written out independently of
    the package: separable 11x11 Gaussian (sigma 1.5), 'valid' filtering, mean of the map;
    HxWxC: the mean over channels."""
    if a.ndim == 3:
        return float(np.mean([_reference_ssim(a[..., c], b[..., c]) for c in range(a.shape[2])]))
    r = np.arange(11) - 5.0
    g = np.exp(-r * r / (2 * 1.5**2))
    g /= g.sum()

    def valid(x):
        rows = sum(g[i] * x[i : x.shape[0] - 10 + i] for i in range(11))
        return sum(g[i] * rows[:, i : x.shape[1] - 10 + i] for i in range(11))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = valid(a), valid(b)
    var_a, var_b = valid(a * a) - mu_a**2, valid(b * b) - mu_b**2
    cov = valid(a * b) - mu_a * mu_b
    return float(np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                         / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))))


@pytest.mark.parametrize("shape", [(32, 40), (25, 19, 3), (11, 11)])
def test_ssim_is_matlabs_valid_region_ssim(shape):
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, shape).astype(np.float64)
    sr = np.clip(hr + rng.normal(0, 20, shape), 0, 255)
    assert ssim(sr, hr) == pytest.approx(_reference_ssim(sr, hr), abs=1e-9)
    assert ssim(sr.astype(np.uint8), hr.astype(np.uint8)) == pytest.approx(
        _reference_ssim(sr.astype(np.uint8).astype(float), hr.astype(np.uint8).astype(float)),
        abs=1e-9)


def test_score_conventions_shave_and_modcrop():
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (50, 43, 3), dtype=np.uint8)
    sr = modcrop(hr, 4).copy()
    sr[:4] = 0  # damage only what the shave removes for "y" and "rgb" at x4
    for convention in ("y", "rgb", "div2k"):
        p, s = score(sr, hr, 4, convention)
        assert p == math.inf and s == pytest.approx(1.0)
    sr[9] = 0  # inside the x4 shave of "div2k" (10 px), outside that of "y" and "rgb"
    assert score(sr, hr, 4, "div2k")[0] == math.inf
    assert score(sr, hr, 4, "y")[0] < 40 and score(sr, hr, 4, "rgb")[0] < 40
    assert set(CONVENTIONS) == {"y", "rgb", "div2k"}


def test_score_y_vs_rgb_differ_and_grayscale_works():
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-8, 9, hr.shape), 0, 255).astype(np.uint8)
    assert score(sr, hr, 2, "y")[0] != score(sr, hr, 2, "rgb")[0]
    p, s = score(sr[:, :, 0], hr[:, :, 0], 2, "y")
    assert p == pytest.approx(psnr(sr[2:-2, 2:-2, 0], hr[2:-2, 2:-2, 0]))


def test_score_shape_mismatch_is_a_one_line_data_error():
    hr = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(DataError) as info:
        score(np.zeros((38, 40, 3), np.uint8), hr, 2)
    assert "\n" not in str(info.value) and "(38, 40, 3)" in str(info.value)
    with pytest.raises(ValueError):
        score(hr, hr, 2, "ycbcr")


def test_images_too_small_for_the_ssim_window_are_a_one_line_data_error():
    """The 11x11 window over the valid region only: under 11 pixels after the shave there is
    no SSIM, and no number is made up for it."""
    assert [min_side(s) for s in (2, 3, 4)] == [16, 18, 20]  # 11 + 2 * shave, modcropped
    assert min_side(2, "div2k") == 28
    with pytest.raises(DataError, match=r"^SSIM needs at least 11x11 pixels .* got 12x10$"):
        ssim(np.zeros((10, 12)), np.zeros((10, 12)))
    hr = np.zeros((15, 40, 3), np.uint8)
    with pytest.raises(DataError) as info:
        score(hr[:14], hr, 2)
    assert str(info.value) == ("40x14 pixels is too small to score at x2 in the 'y' convention: "
                               "SSIM's 11x11 window after a 2-pixel shave needs at least 16 "
                               "pixels a side")
    big = np.zeros((16, 16, 3), np.uint8)
    assert score(big, big, 2)[1] == pytest.approx(1.0)  # exactly the window: defined


# conventions.md, bicubic rows (Y channel, shave = scale): PSNR dB / SSIM
BICUBIC_ROWS = {
    (2, "Set5"): (33.66, 0.9299),
    (2, "Set14"): (30.24, 0.8688),
    (3, "Set5"): (30.39, 0.8682),
    (3, "Set14"): (27.55, 0.7742),
    (4, "Set5"): (28.42, 0.8104),
    (4, "Set14"): (26.00, 0.7027),
}


@pytest.mark.parametrize(("scale", "set_name"), list(BICUBIC_ROWS))
def test_bicubic_rows_of_the_paper(shared_datasets, scale, set_name):
    """MATLAB-bicubic upscaling of the benchmark LR, scored in the paper convention."""
    root = shared_datasets / "benchmark" / set_name
    psnrs, ssims = [], []
    for hr_path in sorted((root / "HR").glob("*.png")):
        hr = np.asarray(Image.open(hr_path))
        lr = np.asarray(
            Image.open(root / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
        )
        sr = imresize(lr, scale)
        assert sr.dtype == np.uint8
        p, s = score(sr, modcrop(hr, scale), scale, "y")
        psnrs.append(p)
        ssims.append(s)
    want_psnr, want_ssim = BICUBIC_ROWS[(scale, set_name)]
    assert np.mean(psnrs) == pytest.approx(want_psnr, abs=0.03)
    assert np.mean(ssims) == pytest.approx(want_ssim, abs=0.0015)
