"""Tiled inference equals whole-image inference, checked with the shipped (trained) weights.

Random-init weights hide edge leaks: their outputs barely depend on far pixels, so a tile
overlap of 8 instead of 21 and a receptive radius of 17 instead of 20 both kept the other
tests green. Trained weights do reach 20 LR pixels, but only just: a pixel 20 away moves an
output by a few float32 ulps (6e-5 to 1.2e-4 on the 0-255 scale), far below one 8-bit level.
So these checks compare float outputs against a tolerance under that: a tile with enough
context repeats the whole-image arithmetic for every pixel it keeps, and on CPU the two agree
to the bit; one pixel of context too few and the tile's edge pixels differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srgrad.inference import forward, tiling
from srgrad.inference.forward import super_resolve
from srgrad.inference.loading import load_model

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
TOL = 1e-5  # on the 0-255 scale: under one float32 ulp of values 128-255 (1.5e-5)
TILE = 32  # LR pixels: a 96x96 image makes 3x3 tiles, with 4 inner tile edges


def shipped(scale: int):
    return load_model(WEIGHTS / f"sedsr-grad_x{scale}.safetensors", device="cpu")


def image(side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (side, side, 3)).astype(np.float32)


def measured_radius(model, scale: int, side: int = 48) -> int:
    """How far (LR pixels, in either direction) the output moves when one input pixel in the
    middle changes from dark to bright: the receptive radius of the trained network."""
    lr, mid = image(side), side // 2
    before = super_resolve(model, lr, value_range=255.0)
    lr[mid, mid] = 255.0 if lr[mid, mid].mean() < 128 else 0.0
    moved = np.abs(super_resolve(model, lr, value_range=255.0) - before).max(axis=2) > 0
    ys, xs = np.nonzero(moved)
    radius = int(max(np.abs(ys // scale - mid).max(), np.abs(xs // scale - mid).max()))
    assert radius < mid - 1, "the image is too small to see the whole receptive field"
    return radius


def tile_edges(side: int) -> np.ndarray:
    """LR rows/columns that lie on the edge of a tile's core (inner edges only)."""
    cuts = {y for y0, y1, _, _ in tiling.plan_tiles(side, side, TILE) for y in (y0, y1 - 1)}
    return np.array(sorted(cuts - {0, side - 1}))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius_is_what_the_trained_network_reaches(scale):
    model = shipped(scale)
    assert measured_radius(model, scale) == model.receptive_radius()


def test_tiles_equal_the_whole_image_at_their_edges():
    model, lr = shipped(2), image(96, seed=1)
    whole = super_resolve(model, lr, value_range=255.0)
    tiled = super_resolve(model, lr, tile=TILE, value_range=255.0)
    assert len(tile_edges(96)) == 4
    assert np.abs(tiled - whole).max() <= TOL
    as_uint8 = lr.round().astype(np.uint8)
    diff = super_resolve(model, as_uint8, tile=TILE).astype(int) - super_resolve(model, as_uint8)
    assert np.abs(diff).max() <= 1


def test_the_receptive_radius_is_enough_context_and_one_less_is_not(monkeypatch):
    """Tiles carrying exactly receptive_radius() pixels of context are exact; one pixel fewer
    and the outputs on the edges of the tiles' cores differ, and only there."""
    model, lr = shipped(2), image(96, seed=1)
    radius = model.receptive_radius()
    whole = super_resolve(model, lr, value_range=255.0)
    monkeypatch.setattr(forward, "tile_overlap", lambda m: radius)
    assert np.abs(super_resolve(model, lr, tile=TILE, value_range=255.0) - whole).max() <= TOL
    monkeypatch.setattr(forward, "tile_overlap", lambda m: radius - 1)
    leak = np.abs(super_resolve(model, lr, tile=TILE, value_range=255.0) - whole).max(axis=2)
    assert leak.max() > TOL
    rows, cols = np.nonzero(leak > TOL)
    edges = tile_edges(96)
    assert all(r // 2 in edges or c // 2 in edges for r, c in zip(rows, cols, strict=True))
