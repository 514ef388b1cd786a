"""Time srgrad's MATLAB-style imresize against PIL's bicubic resize on a DIV2K-sized image.

Run ``python benchmarks/resize.py`` for a markdown table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from srgrad.data.resize import imresize

WIDTH, HEIGHT = 2040, 1404  # a DIV2K HR image


def _best_ms(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best wall time of each function; runs are interleaved so both see the same load."""
    for fn in fns:
        fn()  # warm-up: cached weights, allocator, PIL's coefficient tables
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return [b * 1000 for b in best]


def bench_resize(repeats: int = 3, scales: tuple[int, ...] = (2, 3, 4)) -> list[dict]:
    """Rows {scale, srgrad_ms, pil_ms, ratio} for downscaling a 2040x1404 RGB uint8 image."""
    rng = np.random.default_rng(0)
    # Smooth content plus noise, so neither resizer sees a degenerate image.
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = 127 + 60 * np.sin(xx / 37.0)[..., None] * np.cos(yy / 23.0)[..., None]
    img = np.clip(base + rng.normal(0, 20, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    pil = Image.fromarray(img)
    rows = []
    for s in scales:
        size = (-(-WIDTH // s), -(-HEIGHT // s))
        ours, theirs = _best_ms(
            [
                lambda s=s: imresize(img, 1.0 / s),
                lambda size=size: pil.resize(size, Image.Resampling.BICUBIC, reducing_gap=None),
            ],
            repeats,
        )
        rows.append({"scale": s, "srgrad_ms": ours, "pil_ms": theirs, "ratio": ours / theirs})
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        f"Downscale of a {WIDTH}x{HEIGHT} RGB uint8 image (best of the repeats).",
        "",
        "| scale | srgrad imresize (ms) | PIL bicubic (ms) | srgrad / PIL |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| x{r['scale']} | {r['srgrad_ms']:.1f} | {r['pil_ms']:.1f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table(bench_resize(repeats=5)))
