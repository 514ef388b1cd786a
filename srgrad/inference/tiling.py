"""Tiles: how large (a memory budget or an explicit side, never under MIN_TILE), how much
overlap each carries (the model's receptive radius, so tiled output equals whole-image
output), and where the cuts fall."""

from __future__ import annotations

import math

from torch import nn

from srgrad.errors import ConfigError

MEMORY_BUDGET = 1 << 30  # bytes of activations per forward pass on CPU
MIN_TILE = 32


def bytes_per_lr_pixel(model: nn.Module, scale: int, precision: str = "fp32") -> int:
    """Peak activation bytes per LR pixel of one forward pass (measured on sedsr x2-x4 with
    ~30% headroom): the body holds a few feature maps, the upsampler 4x or 9x more. Under
    bf16/fp16 autocast the feature maps take 2 bytes, so tiles can hold twice the pixels."""
    head = getattr(model, "head", None)
    n_feats = head.out_channels if isinstance(head, nn.Conv2d) else 64
    element = 4 if precision == "fp32" else 2
    return element * n_feats * (6 + 3 * scale * scale)


def auto_tile(model: nn.Module, height: int, width: int, scale: int, overlap: int,
              budget: int, precision: str = "fp32") -> int | None:
    """Tile side (LR pixels) that keeps activations under `budget`, or None if none needed."""
    max_pixels = budget // bytes_per_lr_pixel(model, scale, precision)
    if height * width <= max_pixels:
        return None
    return max(MIN_TILE, math.isqrt(max_pixels) - 2 * overlap)


def tile_overlap(model: nn.Module) -> int:
    """LR pixels of real context each tile carries on every side."""
    return int(getattr(model, "receptive_radius", lambda: 16)()) + 1


def check_tile(tile: int | None, overlap: int | None = None, name: str = "tile") -> None:
    """Refuse explicit tiles under MIN_TILE: each tile also computes `overlap` pixels on every
    side: a 3-pixel tile of sedsr (overlap 21) computes 45x45, 225 times its own area."""
    if tile is not None and tile < MIN_TILE:
        extra = f"{overlap} pixels of" if overlap else "the model's receptive radius as"
        raise ConfigError(f"{name} must be at least {MIN_TILE} (LR pixels), got {tile}: each tile "
                          f"also computes {extra} overlap on every side, so smaller tiles are "
                          "mostly overlap")


def plan_tiles(height: int, width: int, tile: int | None) -> list[tuple[int, int, int, int]]:
    """Core regions (y0, y1, x0, x1) covering the image in near-equal tiles of side <= tile."""
    if tile is None or (tile >= height and tile >= width):
        return [(0, height, 0, width)]

    def cuts(n: int) -> list[int]:
        count = math.ceil(n / tile)
        return [round(i * n / count) for i in range(count + 1)]

    ys, xs = cuts(height), cuts(width)
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1])
            for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
