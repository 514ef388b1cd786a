"""Learning-curve figure from a run's metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from srgrad.evaluation.figures import figure, save_figure


def read_metrics(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def series(rows: list[dict[str, str]], column: str) -> list[tuple[int, float]]:
    """(step, value) for the rows where `column` was logged."""
    return [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]


def plot_curves(metrics_csv: Path, png: Path, title: str = "") -> Path | None:
    """Training loss and validation PSNR against step; None when there is nothing to plot."""
    if not Path(metrics_csv).exists():
        return None
    rows = read_metrics(metrics_csv)
    loss, val = series(rows, "loss"), series(rows, "val_psnr")
    if not loss and not val:
        return None
    fig, axes = figure(figsize=(7, 4))
    ax = axes[0, 0]
    if loss:
        ax.plot(*zip(*loss, strict=False), color="tab:blue", lw=1, label="train L1 loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("L1 loss (0-255 scale)", color="tab:blue")
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val, strict=False), color="tab:red", marker="o", ms=3, label="val PSNR")
        ax2.set_ylabel("validation PSNR (dB, Y)", color="tab:red")
    ax.set_title(title)
    return save_figure(fig, png, dpi=110)


def plot_runs(runs: dict[str, Path], png: Path, title: str = "", smooth: int = 5) -> Path:
    """Several runs' metrics.csv side by side: training loss (moving average over `smooth`
    logged values) and validation PSNR against step, one colour per run label."""
    fig, axes = figure(1, 2, figsize=(11, 4))
    ax_loss, ax_val = axes[0]
    for label, csv_path in runs.items():
        rows = read_metrics(csv_path)
        loss, val = series(rows, "loss"), series(rows, "val_psnr")
        if len(loss) >= smooth:
            steps = [s for s, _ in loss][smooth - 1:]
            values = [v for _, v in loss]
            means = [sum(values[i - smooth + 1:i + 1]) / smooth
                     for i in range(smooth - 1, len(values))]
            ax_loss.plot(steps, means, lw=1, label=label)
        if val:
            ax_val.plot(*zip(*val, strict=False), marker="o", ms=3, label=label)
    ax_loss.set(xlabel="iteration", ylabel=f"train L1 (0-255), mean of {smooth} logs")
    ax_val.set(xlabel="iteration", ylabel="validation PSNR (dB, Y)")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, png, dpi=110)
