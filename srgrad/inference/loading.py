"""Loading a model for inference: registry names with shipped weights or weights files,
the default model of `srgrad upscale`, devices, and the analytic g for inference_mode."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from srgrad.errors import ConfigError, WeightsError
from srgrad.models.blocks import GradResidualBlock
from srgrad.models.precision import resolve_precision, to_channels_last
from srgrad.models.registry import MODELS, SCALES, model_config, suggest
from srgrad.models.weights import load_weights, shipped_weights, shipped_weights_path

# The default of `srgrad upscale` / `srgrad.upscale`, chosen by the rule of docs/results.md
# section 9 (held-out PSNR first, then time per megapixel).
DEFAULT_MODEL = "sedsr-scaled"
DEFAULT_MODEL_WHY = ("best held-out PSNR of the shipped models (33.478 dB, tied with sedsr-grad, "
                     "whose gradient term is inert) at the identity block's speed")


def resolve_device(device: str | torch.device | None, model: nn.Module | None = None
                   ) -> torch.device:
    if device is None:
        param = next(model.parameters(), None) if model is not None else None
        return param.device if param is not None else torch.device("cpu")
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda") from None


def _missing_weights(name: str, scale: int) -> WeightsError:
    shipped = shipped_weights()
    if name in shipped:
        have = ", ".join(f"x{s}" for s in shipped[name])
        return WeightsError(f"no shipped weights for {name} x{scale} (shipped for {name}: {have}); "
                            "use one of those scales or pass a weights file (--weights FILE)")
    if shipped:
        have = "; ".join(f"{n} " + ", ".join(f"x{s}" for s in ss) for n, ss in shipped.items())
        return WeightsError(f"no shipped weights for {name} (shipped: {have}); "
                            "pass a weights file (--weights FILE)")
    return WeightsError(f"no shipped weights for {name} x{scale}: this install ships none yet; "
                        "pass a weights file (--weights FILE) or train one with `srgrad train`")


def _looks_like_path(value: str | os.PathLike) -> bool:
    if isinstance(value, os.PathLike):
        return True
    text = str(value)
    return text.endswith(".safetensors") or "/" in text or os.sep in text or Path(text).is_file()


def use_analytic_grad(model: nn.Module) -> bool:
    """Switch gradient blocks to the analytic g where possible; True if every block can run
    under inference_mode (autograd g cannot)."""
    ok = True
    for block in model.modules():
        if isinstance(block, GradResidualBlock) and block.grad_impl == "autograd":
            if hasattr(block.branch, "analytic_grad"):
                block.grad_impl = "analytic"
            else:
                ok = False
    return ok


def load_model(name_or_path: str | os.PathLike | None = None, scale: int | None = None,
               device: str | torch.device | None = "cpu", precision: str = "fp32") -> nn.Module:
    """A model in eval mode: a registry name with shipped weights, a weights file path, or
    None for DEFAULT_MODEL. Its forward runs in `precision` (auto, fp32, bf16, fp16; see
    models/precision.py)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    if not isinstance(name_or_path, os.PathLike) and str(name_or_path).lower() in MODELS:
        name = str(name_or_path).lower()
        scale = 2 if scale is None else scale
        model_config(name, scale)  # validates the scale
        path = shipped_weights_path(name, scale)
        if path is None:
            raise _missing_weights(name, scale)
    elif _looks_like_path(name_or_path):
        path = Path(name_or_path)
    else:
        name = str(name_or_path)
        raise ConfigError(f"unknown model {name!r}{suggest(name, MODELS)}; run `srgrad models` "
                          "to list them, or pass a weights file")
    if scale is not None and scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES}, got {scale}")
    model, config = load_weights(path, scale)
    model.srgrad_config = config  # type: ignore[assignment]
    use_analytic_grad(model)
    dev = resolve_device(device)
    model.precision = resolve_precision(precision, dev)
    return to_channels_last(model.to(dev)).eval()


def model_scale(model: nn.Module) -> int:
    scale = getattr(model, "scale", None)
    if isinstance(scale, int):
        return scale
    param = next(model.parameters())
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 8, 8, device=param.device, dtype=param.dtype))
    return out.shape[-1] // 8
