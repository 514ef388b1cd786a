"""srgrad: single-image super-resolution with gradient residual connections.

Public API: `load()`, `upscale()` (from srgrad/api.py), `__version__`. Nothing heavy runs at
import.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "load", "upscale"]

from srgrad.api import load, upscale  # noqa: E402
