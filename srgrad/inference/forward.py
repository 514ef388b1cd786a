"""The one forward path shared by `srgrad eval` and `srgrad upscale`.

`super_resolve(model, lr)` takes a numpy image and returns the upscaled numpy image of the
same dtype. It runs under `torch.inference_mode()` and handles:

- value ranges: uint8 is 0-255 and uint16 0-65535. A float image is 0-1 when none of its
  values exceeds 1.0, else 0-255 (see `white_level`). The output has the input's dtype and
  range; integer outputs are rounded and clipped, float outputs are not clipped.
  `value_range=` states the value of white instead (e.g. 4095 for 12-bit data in uint16).
  Grayscale (HxW or HxWx1) is replicated to RGB and the three output channels are averaged.
- tiling: explicit (`tile=N`, LR pixels per tile side) or automatic when the activations would
  exceed a memory budget (`MEMORY_BUDGET`: 1 GiB on CPU; half the free memory on CUDA). Each
  tile is padded by at least `model.receptive_radius()` LR pixels of real context and only its
  central part is kept, so tiled output equals whole-image output (up to float summation order:
  within one 8-bit level). Models with per-sample normalization (`norm="sample"`) see the whole
  image by definition; tiling them changes the result, and a warning says so.
- self-ensemble (`self_ensemble=True`): the 8 flips/rotations averaged (EDSR+ style).
- precision: auto, fp32, bf16 (autocast on CUDA or CPU) or fp16 (autocast, CUDA only);
  None takes the model's own (`srgrad.load(..., precision=)`), else fp32. See
  models/precision.py for `auto`.
- device: None (where the model is), "auto" (CUDA if available), "cpu", "cuda[:N]".
- borders: the network's own zero padding, as in training. Reflect or edge pre-padding
  (Real-ESRGAN's `pre_pad`) scored worse on natural images: full-image Y-PSNR of sedsr-scaled
  x2 in fp32, Set5 37.21 zero / 37.05 reflect / 37.14 edge, Set14 32.47 / 32.19 / 32.21
  (2026-12-07). Its cost: flat saturated colours come out a few levels off in a band of
  about 3 output pixels at each edge, which is most of an image only a few pixels wide
  (`srgrad upscale` warns below `files.SMALL_SIDE`).
- non-finite values: a float image with NaN or inf pixels is a DataError; a network output
  with NaN or inf (weights that are broken or overflow in the precision) is a WeightsError,
  checked per tile, rather than an image silently cast to black.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from srgrad.data.images import from_pil, resize_alpha, to_pil
from srgrad.errors import ConfigError, DataError, WeightsError
from srgrad.inference.loading import load_model, model_scale, resolve_device, use_analytic_grad
from srgrad.inference.tiling import (
    MEMORY_BUDGET,
    auto_tile,
    check_tile,
    plan_tiles,
    tile_overlap,
)
from srgrad.models.blocks import GradResidualBlock
from srgrad.models.precision import (
    autocast,
    channels_last,
    resolve_precision,
)

Progress = Callable[[int, int], None]


def _run(model: nn.Module, x: torch.Tensor, precision: str) -> torch.Tensor:
    with autocast(x.device, precision):
        return model(channels_last(x)).float()


def _forward(model: nn.Module, x: torch.Tensor, ensemble: bool, precision: str) -> torch.Tensor:
    if not ensemble:
        return _run(model, x, precision)
    total: torch.Tensor | None = None
    for k in range(4):
        for flip in (False, True):
            t = torch.rot90(x, k, (2, 3))
            y = _run(model, t.flip(3) if flip else t, precision)
            y = torch.rot90(y.flip(3) if flip else y, -k, (2, 3))
            total = y if total is None else total + y
    assert total is not None
    return total / 8


def white_level(arr: np.ndarray, value_range: float | None = None) -> float:
    """The pixel value of white in `arr`: `value_range` if given, else 255 for uint8, 65535
    for uint16, and for floats 1.0 when no value exceeds 1.0, else 255.

    Why floats decide by their values: 0-1 is what a BasicSR / Real-ESRGAN user holds (their
    img2tensor / tensor2img, torchvision's to_tensor and scikit-image's img_as_float all use
    it), while srgrad has always taken 0-255 floats (its models' scale), so neither reading
    can be the only one. A 0-255 image with no value above 1 is black to the eye; read as 0-1,
    it still comes back on its own range, never 255 times too bright or too dark.
    """
    if value_range is not None:
        if not value_range > 0:
            raise ConfigError(f"value_range must be the (positive) value of white, "
                              f"got {value_range}")
        return float(value_range)
    if arr.dtype == np.uint8:
        return 255.0
    if arr.dtype == np.uint16:
        return 65535.0
    return 1.0 if arr.size and float(arr.max()) <= 1.0 else 255.0


def _to_output(y: np.ndarray, dtype: np.dtype, white: float) -> np.ndarray:
    """Model output on 0-255 -> `dtype` with white at `white`."""
    if white != 255:
        y = y * (white / 255)
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.rint(y), 0, white).astype(dtype)
    return y.astype(dtype)


def _sample_norm(model: nn.Module) -> bool:
    return any(b.config.skip != "identity" and b.config.norm == "sample"
               for b in model.modules() if isinstance(b, GradResidualBlock))


def _guarded(model: nn.Module, x: torch.Tensor, ensemble: bool, precision: str
             ) -> torch.Tensor:
    """_forward with out-of-memory turned into a one-line user error."""
    size = f"{x.shape[-2]}x{x.shape[-1]}"
    try:
        return _forward(model, x, ensemble, precision)
    except torch.cuda.OutOfMemoryError:
        raise DataError(f"out of GPU memory on a {size} tile; pass a smaller --tile "
                        "or --device cpu") from None
    except RuntimeError as exc:
        if "alloc" not in str(exc).lower():
            raise
        raise DataError(f"out of memory on a {size} tile; pass a smaller --tile") from None


def super_resolve(model: nn.Module, lr: np.ndarray, *, tile: int | None = None,
                  self_ensemble: bool = False, device: str | torch.device | None = None,
                  precision: str | None = None, progress: Progress | None = None,
                  memory_budget: int | None = None, value_range: float | None = None
                  ) -> np.ndarray:
    """Upscale one HxWx3 / HxW / HxWx1 image: uint8 (0-255), uint16 (0-65535) or float (0-1
    if no value exceeds 1.0, else 0-255). Returns the same dtype on the same range.

    tile: LR tile side; None tiles automatically only when `memory_budget` (bytes; default
    MEMORY_BUDGET on CPU, half the free memory on CUDA) would be exceeded.
    progress: called as progress(tiles_done, tiles_total) after each tile.
    value_range: the value of white, overriding the rule above (see `white_level`).
    """
    arr = _checked_image(lr)
    overlap = tile_overlap(model)
    check_tile(tile, overlap)
    dev = resolve_device(device, model)
    precision = resolve_precision(precision or getattr(model, "precision", "fp32"), dev)
    model.to(dev).eval()
    with _inference_state(model) as exact_mode:
        scale = model_scale(model)
        height, width = arr.shape[:2]
        if tile is None:
            budget = _default_budget(dev) if memory_budget is None else memory_budget
            tile = auto_tile(model, height, width, scale, overlap, budget, precision)
        tiles = plan_tiles(height, width, tile)
        if len(tiles) > 1 and _sample_norm(model):
            warnings.warn("per-sample normalization makes tiled output differ from whole-image "
                          "output", stacklevel=2)
        white = white_level(arr, value_range)
        channels = arr.shape[2:] if arr.ndim == 2 or arr.shape[2] == 1 else (3,)
        out = np.empty((height * scale, width * scale) + channels, arr.dtype)
        with torch.inference_mode() if exact_mode else torch.no_grad():
            for done, core in enumerate(tiles, start=1):
                _upscale_tile(model, arr, out, core, overlap, scale, white, dev,
                              self_ensemble, precision)
                if progress is not None:
                    progress(done, len(tiles))
        return out


def _checked_image(lr: np.ndarray) -> np.ndarray:
    arr = np.asarray(lr)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise DataError(f"expected an HxW or HxWx3 image, got shape {arr.shape}")
    if not (arr.dtype in (np.uint8, np.uint16) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"expected uint8, uint16 or float pixels, got {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError("the image has NaN or inf pixels; replace them (e.g. np.nan_to_num) "
                        "before upscaling")
    return arr


def _check_finite(y: torch.Tensor, precision: str) -> None:
    """Refuse a NaN/inf network output (one reduction per tile): cast to integers it would
    be written as a black or garbage image with no word."""
    if bool(torch.isfinite(y).all()):
        return
    fix = "use other weights" if precision == "fp32" else "try --precision fp32 or other weights"
    raise WeightsError(f"the model's output is not finite (NaN or inf): the weights are "
                       f"unusable or overflow in {precision}; {fix}")


@contextlib.contextmanager
def _inference_state(model: nn.Module) -> Iterator[bool]:
    """The model switched to the analytic g and to no precision of its own (the caller's
    autocast rules); both restored after, since a model being trained with
    grad_impl="autograd" (validation runs through here) must keep its setting. Yields
    whether every block can run under inference_mode."""
    previous = {b: b.grad_impl for b in model.modules() if isinstance(b, GradResidualBlock)}
    own_precision = getattr(model, "precision", None)
    exact_mode = use_analytic_grad(model)
    if own_precision is not None:
        model.precision = "fp32"
    try:
        yield exact_mode
    finally:
        for block, impl in previous.items():
            block.grad_impl = impl
        if own_precision is not None:
            model.precision = own_precision


def _default_budget(dev: torch.device) -> int:
    if dev.type != "cuda":
        return MEMORY_BUDGET
    # half of what is free, counting PyTorch's cached blocks
    cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    return (torch.cuda.mem_get_info(dev)[0] + cached) // 2


def _upscale_tile(model: nn.Module, arr: np.ndarray, out: np.ndarray,
                  core: tuple[int, int, int, int], overlap: int, s: int, white: float,
                  dev: torch.device, self_ensemble: bool, precision: str) -> None:
    """Run the model on one core region plus its overlap and write the core's output."""
    (y0, y1, x0, x1), (height, width) = core, arr.shape[:2]
    py0, py1 = max(0, y0 - overlap), min(height, y1 + overlap)
    px0, px1 = max(0, x0 - overlap), min(width, x1 + overlap)
    patch = np.asarray(arr[py0:py1, px0:px1], dtype=np.float32) * (255 / white)
    patch = patch.reshape(py1 - py0, px1 - px0, -1).transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(patch))[None].to(dev)
    gray = x.shape[1] == 1
    y = _guarded(model, x.expand(1, 3, -1, -1) if gray else x, self_ensemble, precision)
    y = y[0, :, (y0 - py0) * s:(y1 - py0) * s, (x0 - px0) * s:(x1 - px0) * s].permute(1, 2, 0)
    _check_finite(y, precision)
    y = y.mean(2, keepdim=arr.ndim == 3) if gray else y
    out[y0 * s:y1 * s, x0 * s:x1 * s] = _to_output(y.cpu().numpy(), out.dtype, white)


def _resolve_model(model: Any, scale: int, device: Any) -> nn.Module:
    if isinstance(model, nn.Module):
        have = model_scale(model)
        if have != scale:
            raise ConfigError(f"the model upscales x{have}, not x{scale}; pass scale={have}")
        return model
    return load_model(model, scale=scale, device=device if device is not None else "cpu",
                      precision="auto")


def upscale_image(image: Any, scale: int = 2, model: Any = None, **options: Any) -> Any:
    """Upscale a PIL image (-> PIL, mode kept: L stays L, alpha upscaled bicubic) or a numpy
    array (-> numpy, same dtype and value range; HxWx2/HxWx4 carry alpha in the last channel).
    A float array is 0-1 when no value exceeds 1.0, else 0-255 (`white_level` says why);
    pass value_range=1.0 or 255.0 to say which.

    model: None (DEFAULT_MODEL), a registry name, a weights path or an nn.Module.
    options: those of `super_resolve` (tile, self_ensemble, device, precision, progress,
    value_range).
    """
    net = _resolve_model(model, scale, options.get("device"))
    if isinstance(image, Image.Image):
        picture = from_pil(image)
        pixels = super_resolve(net, picture.pixels, **options)
        alpha = resize_alpha(picture.alpha, scale) if picture.alpha is not None else None
        return to_pil(pixels, alpha, picture.icc)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        # One range for color and alpha, decided on the whole array.
        options["value_range"] = white = white_level(arr, options.get("value_range"))
        color = super_resolve(net, arr[..., :-1] if arr.shape[2] == 4 else arr[..., 0], **options)
        alpha = np.minimum(resize_alpha(arr[..., -1], scale), white)
        return np.dstack([color, alpha]).astype(arr.dtype)
    return super_resolve(net, arr, **options)
