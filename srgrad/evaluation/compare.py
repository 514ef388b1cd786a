"""Comparison grids for `srgrad eval --compare`: one zoomed crop of HR, bicubic and each model.

The crop is chosen automatically: the square window (a quarter of the shorter side) with the
most HR gradient energy, i.e. the most detail, found exactly with a summed-area table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from srgrad.evaluation.figures import figure, png_bytes
from srgrad.evaluation.report import write_bytes_atomic
from srgrad.evaluation.run import BICUBIC, EvalImage, ImageScore, bicubic_upscale
from srgrad.metrics import rgb_to_y, score

MIN_CROP = 16
Box = tuple[int, int, int, int]  # y0, x0, height, width


def detail_crop(hr: np.ndarray, fraction: float = 0.25, min_side: int = MIN_CROP) -> Box:
    """The square window of side `fraction` x the shorter side with the highest sum of squared
    luma gradients (ties: the top-left-most)."""
    y = rgb_to_y(hr)
    h, w = y.shape
    side = min(h, w, max(min_side, round(min(h, w) * fraction)))
    energy = np.zeros((h, w))
    energy[:, :-1] += np.diff(y, axis=1) ** 2
    energy[:-1, :] += np.diff(y, axis=0) ** 2
    sat = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = sat[side:, side:] - sat[:-side, side:] - sat[side:, :-side] + sat[:-side, :-side]
    y0, x0 = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y0), int(x0), side, side


def _title(label: str, result: ImageScore | None) -> str:
    if result is None:
        return label
    psnr = "inf" if not math.isfinite(result.psnr) else f"{result.psnr:.2f}"
    return f"{label}\n{psnr} dB / {result.ssim:.4f}"


def compare_figure(image: EvalImage, outputs: Mapping[str, tuple[np.ndarray, ImageScore]],
                   scale: int, convention: str = "y", title: str = "") -> bytes:
    """PNG bytes of the grid: the full HR with the crop marked, then HR, bicubic (computed here
    if it is not among `outputs`) and each model on the same crop, titled with its PSNR/SSIM."""
    from matplotlib.patches import Rectangle

    panels: dict[str, tuple[np.ndarray, ImageScore | None]] = {"HR (crop)": (image.hr, None)}
    if BICUBIC not in outputs:
        bic = bicubic_upscale(image.lr, scale)
        panels[BICUBIC] = (bic, ImageScore(image.name, *score(bic, image.hr, scale, convention)))
    panels.update(outputs)
    y0, x0, ch, cw = detail_crop(image.hr)
    n = len(panels) + 1
    rows = math.ceil(n / 5)
    cols = math.ceil(n / rows)
    fig, axes = figure(rows, cols, figsize=(3.0 * cols, 3.4 * rows), layout="constrained")
    axes = axes.ravel()
    gray = image.hr.ndim == 2 or image.hr.shape[2] == 1
    style = {"cmap": "gray", "vmin": 0, "vmax": 255} if gray else {}
    axes[0].imshow(np.squeeze(image.hr), **style)
    axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), cw, ch, fill=False, edgecolor="red", lw=1.5))
    axes[0].set_title(f"{image.name} ({image.hr.shape[1]}x{image.hr.shape[0]})", fontsize=9)
    for ax, (label, (sr, result)) in zip(axes[1:], panels.items(), strict=False):
        ax.imshow(np.squeeze(sr[y0:y0 + ch, x0:x0 + cw]), interpolation="nearest", **style)
        ax.set_title(_title(label, result), fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def write_compare(folder: Path, dataset: str, scale: int, image: EvalImage,
                  outputs: Mapping[str, tuple[np.ndarray, ImageScore]],
                  convention: str = "y") -> Path:
    """`folder/<dataset>/<image>_x<scale>.png`, written atomically."""
    title = f"{dataset} x{scale}, {convention} convention: PSNR dB / SSIM"
    png = compare_figure(image, outputs, scale, convention, title)
    return write_bytes_atomic(folder / dataset / f"{image.name}_x{scale}.png", png)
