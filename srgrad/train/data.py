"""Training data: HR images decoded once, LR from the on-disk bicubic cache, random patches.

Patches are sampled in the training process from images held in memory (on the training
device), with a torch.Generator whose state is checkpointed: a resumed run draws exactly the
patches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from srgrad.data.datasets import cached_lr, hr_training_paths, load_rgb
from srgrad.data.resize import modcrop
from srgrad.errors import DataError


def holdout_split(paths: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """A deterministic validation split: the `count` paths with the smallest name hash."""
    if count >= len(paths):
        raise DataError(f"holdout:{count} leaves no training images: only {len(paths)} found; "
                        "hold out fewer (srgrad train: --val holdout:N with a smaller N, or "
                        "--val none)")
    ranked = sorted(paths, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
    held = set(ranked[:count])
    return [p for p in paths if p not in held], sorted(held)


def held_out_paths(data: list[str | Path], count: int) -> list[Path]:
    """The HR images `--val holdout:count` holds out of the training folders `data`."""
    return holdout_split(hr_training_paths([Path(d) for d in data]), count)[1]


class PatchSampler:
    """Random (LR, HR) patch batches with flips and 90-degree rotations."""

    def __init__(
        self,
        pairs: list[tuple[Tensor, Tensor]],
        scale: int,
        patch: int,
        batch: int,
        seed: int,
    ):
        # Batches land on whatever device the pairs are on.
        self.pairs = pairs
        self.scale, self.patch, self.batch = scale, patch, batch
        self.generator = torch.Generator().manual_seed(seed)
        sizes = torch.tensor([lr.shape[-2] * lr.shape[-1] for lr, _ in pairs], dtype=torch.float64)
        self.weights = sizes / sizes.sum()  # larger images give proportionally more patches

    def state(self) -> Tensor:
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    def sample(self) -> tuple[Tensor, Tensor]:
        gen, p, s = self.generator, self.patch, self.scale
        idx = torch.multinomial(self.weights, self.batch, replacement=True, generator=gen)
        draws = torch.rand(self.batch, 2, generator=gen, dtype=torch.float64)
        augs = torch.randint(0, 8, (self.batch,), generator=gen)
        lrs, hrs = [], []
        for i, (y_frac, x_frac), aug in zip(
            idx.tolist(), draws.tolist(), augs.tolist(), strict=False
        ):
            lr, hr = self.pairs[i]
            y = int(y_frac * (lr.shape[-2] - p + 1))
            x = int(x_frac * (lr.shape[-1] - p + 1))
            lr_patch = lr[:, y : y + p, x : x + p]
            hr_patch = hr[:, y * s : (y + p) * s, x * s : (x + p) * s]
            lrs.append(augment(lr_patch, aug))
            hrs.append(augment(hr_patch, aug))
        return torch.stack(lrs).float(), torch.stack(hrs).float()


def augment(img: Tensor, code: int) -> Tensor:
    """One of the 8 symmetries of the square: bit 0 flips W, bit 1 flips H, bit 2 transposes."""
    if code & 1:
        img = img.flip(-1)
    if code & 2:
        img = img.flip(-2)
    if code & 4:
        img = img.transpose(-1, -2)
    return img


def load_training_image(path: Path, scale: int, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(HR modcropped to the scale, its bicubic LR from the on-disk cache)."""
    hr = modcrop(load_rgb(path), scale)
    return hr, cached_lr(path, hr, scale, cache_dir)


def load_training_pairs(
    paths: list[Path], scale: int, patch: int, cache_dir: Path, device: torch.device, workers: int
) -> list[tuple[Tensor, Tensor]]:
    """Decode each HR once, fetch/make its LR, drop images smaller than a patch (with a warning)."""

    def load(path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
        return path, *load_training_image(path, scale, cache_dir)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        loaded = list(pool.map(load, paths))
    pairs, small = [], []
    for path, hr, lr in loaded:
        if lr.shape[0] < patch or lr.shape[1] < patch:
            small.append(path.name)
            continue
        pairs.append((to_chw(lr, device), to_chw(hr, device)))
    if not pairs:
        raise DataError(f"no training image is at least {patch}x{patch} LR pixels; lower --patch")
    if small:
        print(
            f"warning: skipped {len(small)} image(s) smaller than the {patch}px LR patch "
            f"(e.g. {small[0]}); lower --patch to use them",
            file=sys.stderr,
        )
    return pairs


def to_chw(img: np.ndarray, device: torch.device) -> Tensor:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device)


def prepare_training_data(
    data: list[str],
    scale: int,
    patch: int,
    holdout: int,
    cache_dir: Path,
    device: torch.device,
    workers: int,
) -> tuple[list[tuple[Tensor, Tensor]], list[Path], float]:
    """(training pairs, held-out HR paths, seconds spent) for the given --data folders."""
    start = time.perf_counter()
    paths = hr_training_paths([Path(d) for d in data])
    held: list[Path] = []
    if holdout:
        paths, held = holdout_split(paths, holdout)
    pairs = load_training_pairs(paths, scale, patch, cache_dir, device, workers)
    return pairs, held, time.perf_counter() - start
