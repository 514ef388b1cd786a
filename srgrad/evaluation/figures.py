"""Figures written to PNG files with matplotlib's object API: no pyplot, so no global backend
to set and nothing done at import time (matplotlib itself is imported only when a figure is
made: plotting is optional to every command)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from srgrad.evaluation.report import write_bytes_atomic


def figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float],
           layout: str = "tight") -> tuple[Any, np.ndarray]:
    """A Figure on the Agg canvas and its axes as an (nrows, ncols) array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def png_bytes(fig: Any, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Any, path: Path, dpi: int = 100) -> Path:
    """`fig` as a PNG at `path`, written atomically (folders made as needed)."""
    return write_bytes_atomic(Path(path), png_bytes(fig, dpi))
