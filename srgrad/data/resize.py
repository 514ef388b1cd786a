"""MATLAB-compatible bicubic ``imresize`` (antialiased), vectorised per axis.

Each axis is resized by its MATLAB weight matrix (output x input), which is banded. The matrix
is cut into row blocks of ``_BLOCK`` outputs; each block only touches a narrow window of input
samples, so resizing an axis is a few dozen small dense matmuls (BLAS) and no Python loop runs
per pixel. Borders are folded into the matrix, so the input is never padded.
"""

from __future__ import annotations

import functools
import math
from typing import TypeVar

import numpy as np
import torch

RESIZE_VERSION = 1  # bump when the output of imresize changes (used as a cache key)
BORDERS = ("symmetric", "replicate")
_BLOCK = 16  # output samples per matmul block: small keeps the wasted zero band narrow

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Block = tuple[int, int, int, int, np.ndarray]  # out start, out end, in start, in end, weights


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _mirror(idx: np.ndarray, in_len: int, border: str) -> np.ndarray:
    """Fold out-of-range taps inside: MATLAB's symmetric ``aux`` table, or old MATLAB's clamp."""
    if border == "replicate":
        return np.clip(idx, 0, in_len - 1)
    if border != "symmetric":
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    period = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    return period[np.mod(idx, 2 * in_len)]


@functools.lru_cache(maxsize=512)
def axis_weights(
    in_len: int, out_len: int, scale: float, border: str = "symmetric"
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``contributions``: 0-based source indices and float64 weights, both (out_len, P).

    Rows sum to 1; all-zero tap columns are dropped; indices are folded by ``border``.
    """
    width = 4.0
    if scale < 1:  # antialiasing: the kernel is stretched by 1/scale
        width = width / scale
        kernel = lambda d: scale * cubic(scale * d)  # noqa: E731
    else:
        kernel = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    idx = left[:, None] + np.arange(int(math.ceil(width)) + 2)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    idx = _mirror(idx[:, keep].astype(np.int64) - 1, in_len, border)
    weights = weights[:, keep]
    idx.setflags(write=False)
    weights.setflags(write=False)
    return idx, weights


@functools.lru_cache(maxsize=512)
def _blocks(in_len: int, out_len: int, scale: float, border: str) -> tuple[Block, ...]:
    """The weight matrix as dense row blocks over the input window each block reads."""
    idx, weights = axis_weights(in_len, out_len, scale, border)
    blocks = []
    for j0 in range(0, out_len, _BLOCK):
        j1 = min(j0 + _BLOCK, out_len)
        rows = idx[j0:j1]
        a, b = int(rows.min()), int(rows.max()) + 1
        mat = np.zeros((j1 - j0, b - a))
        # add.at: a mirrored tap can hit the same source sample twice near a border
        np.add.at(mat, (np.arange(j1 - j0)[:, None], rows - a), weights[j0:j1])
        mat.setflags(write=False)
        blocks.append((j0, j1, a, b, mat))
    return tuple(blocks)


@functools.lru_cache(maxsize=512)
def _np_blocks(
    in_len: int, out_len: int, scale: float, border: str, dtype: str
) -> tuple[Block, ...]:
    blocks = _blocks(in_len, out_len, scale, border)
    return tuple((j0, j1, a, b, m.astype(dtype)) for j0, j1, a, b, m in blocks)


@functools.lru_cache(maxsize=256)
def _torch_blocks(
    in_len: int, out_len: int, scale: float, border: str, device: torch.device, dtype: torch.dtype
) -> tuple[tuple[int, int, int, int, torch.Tensor], ...]:
    """The blocks as tensors on ``device``, so repeated GPU calls copy nothing."""
    blocks = _blocks(in_len, out_len, scale, border)
    return tuple(
        (j0, j1, a, b, torch.tensor(m, dtype=dtype, device=device)) for j0, j1, a, b, m in blocks
    )


def _resize_np(x: np.ndarray, rows: bool, out_len: int, scale: float, border: str) -> np.ndarray:
    """Resize the rows (dim -2) or columns (dim -1) of a C-contiguous float array."""
    in_len = x.shape[-2] if rows else x.shape[-1]
    blocks = _np_blocks(in_len, out_len, scale, border, x.dtype.str)
    if rows:
        out = np.empty(x.shape[:-2] + (out_len, x.shape[-1]), dtype=x.dtype)
        for j0, j1, a, b, m in blocks:
            np.matmul(m, x[..., a:b, :], out=out[..., j0:j1, :])
        return out
    flat = x.reshape(-1, in_len)  # one 2-D matmul per block beats a batched one
    out = np.empty((flat.shape[0], out_len), dtype=x.dtype)
    for j0, j1, a, b, m in blocks:
        np.matmul(flat[:, a:b], m.T, out=out[:, j0:j1])
    return out.reshape(x.shape[:-1] + (out_len,))


def _resize_torch(
    x: torch.Tensor, rows: bool, out_len: int, scale: float, border: str
) -> torch.Tensor:
    in_len = x.shape[-2] if rows else x.shape[-1]
    blocks = _torch_blocks(in_len, out_len, scale, border, x.device, x.dtype)
    if rows:
        return torch.cat([m @ x[..., a:b, :] for _, _, a, b, m in blocks], dim=-2)
    return torch.cat([x[..., a:b] @ m.T for _, _, a, b, m in blocks], dim=-1)


def _plan(
    in_shape: tuple[int, int], scale: float | None, output_shape: tuple[int, int] | None
) -> list[tuple[int, int, float]]:
    """The passes to run, as (axis, out_len, scale); MATLAB resizes the smaller scale first."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of scale and output_shape")
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        # The tolerance keeps ceil(300 * (1/3)) at 100 despite floating-point error.
        out = [max(1, math.ceil(n * scale - 1e-9)) for n in in_shape]
        scales = [float(scale)] * 2
    else:
        out = [int(n) for n in output_shape]  # type: ignore[union-attr]
        if min(out) < 1:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        scales = [out[0] / in_shape[0], out[1] / in_shape[1]]
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    return [
        (axis, out[axis], scales[axis])
        for axis in order
        if not (out[axis] == in_shape[axis] and scales[axis] == 1)  # identity weights
    ]


def _round_clip_np(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """MATLAB's conversion to an integer class: saturate, then round half away from zero."""
    np.clip(x, lo, hi, out=x)
    if lo < 0:
        return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))
    x += 0.5
    return np.floor(x, out=x)


def _round_clip_torch(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    x = x.clamp(lo, hi)
    if lo < 0:
        return torch.where(x >= 0, torch.floor(x + 0.5), torch.ceil(x - 0.5))
    return torch.floor(x + 0.5)


def _imresize_np(img: np.ndarray, scale, output_shape, border: str) -> np.ndarray:
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC array, got shape {img.shape}")
    kind, size = img.dtype.kind, img.dtype.itemsize
    if kind not in "uif":
        raise TypeError(f"imresize does not support dtype {img.dtype}")
    limits = None
    if kind == "f":
        work = np.float64 if size > 4 else np.float32
    else:
        work = np.float32 if size == 1 else np.float64  # see the note in imresize
        info = np.iinfo(img.dtype)
        limits = (float(info.min), float(info.max))
    h, w = img.shape[:2]
    x = img.astype(work)
    channels_last = x.ndim == 3
    for axis, out_len, s in _plan((h, w), scale, output_shape):
        if axis == 0 and channels_last:  # rows of an HxWxC image: a matmul on its (H, W*C) view
            x = _resize_np(x.reshape(x.shape[0], -1), True, out_len, s, border)
            x = x.reshape(out_len, w, -1)
        else:
            if channels_last:
                x = np.ascontiguousarray(x.transpose(2, 0, 1))
                channels_last = False
            x = _resize_np(x, axis == 0, out_len, s, border)
        if limits is not None:
            # MATLAB's imresizemex returns the input's class after each pass, so integer
            # images are rounded between the two passes as well.
            x = _round_clip_np(x, *limits)
    if x.ndim == 3 and not channels_last:
        x = x.transpose(1, 2, 0)
    return np.ascontiguousarray(x, dtype=img.dtype)


def _imresize_torch(img: torch.Tensor, scale, output_shape, border: str) -> torch.Tensor:
    if img.ndim not in (2, 3, 4):
        raise ValueError(f"expected (H,W), (C,H,W) or (N,C,H,W), got {tuple(img.shape)}")
    dtype = img.dtype
    if dtype == torch.bool or dtype.is_complex:
        raise TypeError(f"imresize does not support dtype {dtype}")
    limits = None
    if dtype.is_floating_point:
        work = torch.float64 if dtype == torch.float64 else torch.float32
    else:
        info = torch.iinfo(dtype)
        limits = (float(info.min), float(info.max))
        work = torch.float32 if info.bits == 8 else torch.float64
    x = img.to(work)
    for axis, out_len, s in _plan((img.shape[-2], img.shape[-1]), scale, output_shape):
        x = _resize_torch(x, axis == 0, out_len, s, border)
        if limits is not None:
            x = _round_clip_torch(x, *limits)
    return (x.clone() if x is img else x).to(dtype)


def imresize(
    img: Array,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    border: str = "symmetric",
) -> Array:
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')``, or to ``output_shape`` (H, W).

    numpy: HxW or HxWxC; integer dtypes (uint8, uint16) are rounded and clipped, float dtypes
    stay float and unclipped. torch: (H, W), (C, H, W) or (N, C, H, W) on any device, same
    rules. ``border="replicate"`` reproduces older MATLAB releases, which clamp indices.
    8-bit images are computed in float32 (MATLAB: double); this only matters for sums that
    are exact ties at .5 in exact arithmetic, where the last bit decides the rounding.
    """
    if isinstance(img, np.ndarray):
        return _imresize_np(img, scale, output_shape, border)
    if isinstance(img, torch.Tensor):
        return _imresize_torch(img, scale, output_shape, border)
    raise TypeError(f"imresize takes a numpy array or torch tensor, not {type(img).__name__}")


def modcrop(img: Array, scale: int) -> Array:
    """Top-left crop to a multiple of ``scale``: numpy HxW[xC] or torch (..., H, W)."""
    if isinstance(img, np.ndarray):
        h, w = img.shape[:2]
        return img[: h - h % scale, : w - w % scale]
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int, border: str = "symmetric") -> np.ndarray:
    """The benchmark LR of an HR image: ``imresize(modcrop(hr, s), 1/s)``."""
    return imresize(modcrop(hr, scale), 1.0 / scale, border=border)
