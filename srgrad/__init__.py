"""srgrad: single-image super-resolution with gradient residual connections.

Public API: `load()`, `upscale()`, `__version__`. Nothing heavy runs at import.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "load", "upscale"]


def load(name_or_path, scale: int | None = None, device: str = "cpu"):
    """A ready torch.nn.Module (eval mode) from a registry name with shipped weights or a file."""
    from srgrad.infer import load_model

    return load_model(name_or_path, scale=scale, device=device)


def upscale(image, scale: int = 2, model=None, **options):
    """Upscale a PIL image or numpy array; returns the same kind. See srgrad.infer."""
    from srgrad.infer import upscale_image

    return upscale_image(image, scale=scale, model=model, **options)
