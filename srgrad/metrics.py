"""PSNR and SSIM as SR papers compute them (MATLAB conventions), in float64 numpy.

SSIM follows the field's convention: an 11x11 Gaussian window over the valid region only (no
padded borders). An image with a side under 11 pixels after the shave has no valid window,
so its SSIM is undefined: `ssim` and `score` refuse it with a one-line DataError rather than
return a number (NaN or a padded-border value would slip into a set's mean unnoticed).
`min_side` says how large an HR must be for `score`.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from srgrad.errors import DataError

CONVENTIONS: dict[str, str] = {
    "y": "Y channel of MATLAB rgb2ycbcr (studio range), shave = scale (paper convention)",
    "rgb": "RGB channels, shave = scale",
    "div2k": "RGB channels, shave = scale + 6 (EDSR-PyTorch DIV2K validation)",
}

SSIM_WINDOW = 11


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma in [16, 235] as float64 (not rounded) from uint8 RGB.

    Grayscale input (HxW or HxWx1) is returned as it is, as float64 HxW.
    """
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 1:
        return x[:, :, 0]
    if x.ndim == 2:
        return x
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected HxW or HxWx3, got shape {x.shape}")
    r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr(sr: np.ndarray, hr: np.ndarray, data_range: float = 255) -> float:
    """Peak signal-to-noise ratio in dB over all values; ``inf`` for identical inputs."""
    diff = np.asarray(sr, dtype=np.float64) - np.asarray(hr, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(sr: np.ndarray, hr: np.ndarray) -> float:
    """SSIM on the 0..255 scale (Wang et al.): 11x11 Gaussian, sigma 1.5, valid region.

    HxW inputs give one SSIM; HxWxC inputs the mean over channels. scikit-image's SSIM with
    these settings: it pads with reflected borders but averages the map cropped by 5 pixels
    per side, which is exactly MATLAB's valid region (tests/test_metrics.py checks it against
    an independent valid-region implementation)."""
    a = np.asarray(sr, dtype=np.float64)
    b = np.asarray(hr, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise DataError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window, "
                        f"valid region only), got {a.shape[1]}x{a.shape[0]}")
    return float(structural_similarity(
        a, b, win_size=SSIM_WINDOW, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255, channel_axis=2 if a.ndim == 3 else None))


def _squeeze_gray(img: np.ndarray) -> np.ndarray:
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img


def shave(scale: int, convention: str) -> int:
    """Border pixels dropped on every side before scoring."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    return scale + 6 if convention == "div2k" else scale


def min_side(scale: int, convention: str = "y") -> int:
    """The smallest HR side `score` accepts: the SSIM window plus the shave on both sides,
    rounded up to a multiple of the scale (the HR is modcropped)."""
    need = SSIM_WINDOW + 2 * shave(scale, convention)
    return -(-need // scale) * scale


def score(
    sr_uint8: np.ndarray, hr_uint8: np.ndarray, scale: int, convention: str = "y"
) -> tuple[float, float]:
    """(PSNR, SSIM) of an SR output against its HR under one of ``CONVENTIONS``.

    The HR is modcropped to ``scale`` first and must then have the SR's shape. PSNR is
    ``inf`` when the shaved images are identical. An HR with a side under `min_side` is a
    DataError (see the module docstring).
    """
    border = shave(scale, convention)
    sr = _squeeze_gray(np.asarray(sr_uint8))
    hr = _squeeze_gray(np.asarray(hr_uint8))
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    if sr.shape != hr.shape:
        raise DataError(
            f"SR output shape {sr.shape} does not match the HR shape {hr.shape} "
            f"after cropping to a multiple of {scale}"
        )
    need = min_side(scale, convention)
    if min(hr.shape[:2]) < need:
        raise DataError(
            f"{hr.shape[1]}x{hr.shape[0]} pixels is too small to score at x{scale} in the "
            f"{convention!r} convention: SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window after a "
            f"{border}-pixel shave needs at least {need} pixels a side"
        )
    if convention == "y":
        sr_c, hr_c = rgb_to_y(sr), rgb_to_y(hr)
    else:
        sr_c, hr_c = sr.astype(np.float64), hr.astype(np.float64)
    sr_c = sr_c[border:-border, border:-border]
    hr_c = hr_c[border:-border, border:-border]
    return psnr(sr_c, hr_c), ssim(sr_c, hr_c)
