"""Learning-curve figure from a run's metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path


def read_metrics(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def plot_curves(metrics_csv: Path, png: Path, title: str = "") -> Path | None:
    """Training loss and validation PSNR against step; None when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not Path(metrics_csv).exists():
        return None
    rows = read_metrics(metrics_csv)
    loss = [(int(r["step"]), float(r["loss"])) for r in rows if r.get("loss")]
    val = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    if not loss and not val:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if loss:
        ax.plot(*zip(*loss, strict=False), color="tab:blue", lw=1, label="train L1 loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("L1 loss (0-255 scale)", color="tab:blue")
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val, strict=False), color="tab:red", marker="o", ms=3, label="val PSNR")
        ax2.set_ylabel("validation PSNR (dB, Y)", color="tab:red")
    ax.set_title(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
