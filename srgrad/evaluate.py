"""Scoring models on evaluation images in the paper convention (metrics.py).

Everything that scores a network, `srgrad eval` and training's validation alike, goes through
`score_images`, which runs the one inference path (infer.super_resolve).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srgrad.data.datasets import eval_pairs, load_pair, load_rgb, resolve_root
from srgrad.data.resize import bicubic_downscale, imresize, modcrop
from srgrad.metrics import score


@dataclass
class EvalImage:
    name: str
    lr: np.ndarray
    hr: np.ndarray  # modcropped to the scale


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float


def load_eval_images(
    spec: str | Sequence[Path], scale: int, root: str | Path | None = None
) -> list[EvalImage]:
    """A dataset name / folder (see datasets.eval_pairs), or explicit HR paths (held-out split)."""
    if isinstance(spec, str):
        pairs = eval_pairs(spec, scale, resolve_root(root))
        return [EvalImage(p.name, *load_pair(p, scale)) for p in pairs]
    images = []
    for path in spec:
        hr = modcrop(load_rgb(path), scale)
        images.append(EvalImage(Path(path).stem, bicubic_downscale(hr, scale), hr))
    return images


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(lr, scale)


def score_images(
    upscaler: Callable[[np.ndarray], np.ndarray],
    images: Sequence[EvalImage],
    scale: int,
    convention: str = "y",
    on_image: Callable[[EvalImage, np.ndarray, ImageScore], None] | None = None,
) -> list[ImageScore]:
    scores = []
    for image in images:
        sr = upscaler(image.lr)
        psnr, ssim = score(sr, image.hr, scale, convention)
        result = ImageScore(image.name, psnr, ssim)
        scores.append(result)
        if on_image is not None:
            on_image(image, sr, result)
    return scores


def mean_scores(scores: Sequence[ImageScore]) -> tuple[float, float]:
    return float(np.mean([s.psnr for s in scores])), float(np.mean([s.ssim for s in scores]))


def score_model(
    model: nn.Module,
    images: Sequence[EvalImage],
    scale: int,
    device: torch.device | str = "cpu",
    convention: str = "y",
) -> tuple[float, float]:
    """Mean PSNR/SSIM of a model (used by training's validation)."""
    from srgrad.infer import super_resolve

    was_training = model.training
    model.eval()
    try:
        scores = score_images(
            lambda lr: super_resolve(model, lr, device=device), images, scale, convention
        )
    finally:
        model.train(was_training)
    return mean_scores(scores)
