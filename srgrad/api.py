"""srgrad's Python API: `load()` and `upscale()`, re-exported as `srgrad.load` and
`srgrad.upscale`. Nothing heavy runs at import: torch and the models load on first call."""

from __future__ import annotations

__all__ = ["load", "upscale"]


def load(name_or_path, scale: int | None = None, device: str = "cpu", precision: str = "auto"):
    """A ready torch.nn.Module (eval mode, channels_last) from a registry name with shipped
    weights or a file. Its forward runs in `precision`: auto (bf16 where the device computes
    it natively, else fp32), fp32, bf16 or fp16 (CUDA)."""
    from srgrad.inference.loading import load_model

    return load_model(name_or_path, scale=scale, device=device, precision=precision)


def upscale(image, scale: int = 2, model=None, precision: str | None = None, **options):
    """Upscale a PIL image or numpy array; returns the same kind. See srgrad.inference.forward.

    precision: None takes the model's own (auto for a model srgrad loads), else auto, fp32,
    bf16 or fp16."""
    from srgrad.inference.forward import upscale_image

    return upscale_image(image, scale=scale, model=model, precision=precision, **options)
