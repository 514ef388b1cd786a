"""Figures and summary.md for the sin study, rebuilt from the CSV files in its folder."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from srgrad.evaluation.figures import figure, save_figure

STYLE = {  # variant -> (colour, line style)
    "plain": ("tab:gray", ":"),
    "residual": ("tab:blue", "--"),
    "residual-scaled": ("tab:blue", "-"),
    "gradient": ("tab:red", "-"),
    "convex-alpha+3": ("tab:green", "-"),
    "convex-alpha0": ("tab:olive", "-"),
    "convex-alpha-3": ("tab:cyan", "-"),
    "convex-nonorm": ("tab:purple", "--"),
    "convex-through": ("tab:orange", "--"),
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mean_se(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else math.nan
    return float(arr.mean()), se


def _plot_curves(out: Path, curves: dict, variants: list[str], freq: int) -> Path:
    fig, axes = figure(figsize=(7, 4.5))
    ax = axes[0, 0]
    n_seeds = 0
    for variant in variants:
        by_epoch = curves.get((variant, freq))
        if not by_epoch:
            continue
        epochs = sorted(by_epoch)
        stats = [_mean_se(by_epoch[e]) for e in epochs]
        mean = np.array([m for m, _ in stats])
        se = np.nan_to_num(np.array([s for _, s in stats]))
        n_seeds = max(n_seeds, len(by_epoch[epochs[-1]]))
        colour, style = STYLE.get(variant, ("black", "-"))
        ax.plot(epochs, mean, color=colour, linestyle=style, label=variant, linewidth=1.4)
        low = np.clip(mean - se, mean * 1e-3, None)  # keep the band on a log axis
        ax.fill_between(epochs, low, mean + se, color=colour, alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test MSE")
    ax.set_title(f"y = sin({freq} x): mean test MSE, band = standard error over {n_seeds} seeds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, out / f"curves_d{freq}.png", dpi=120)


def _plot_functions(out: Path) -> Path | None:
    rows = _read(out / "functions.csv")
    if not rows:
        return None
    names = [k for k in rows[0] if k not in ("x", "truth")]
    x = np.array([float(r["x"]) for r in rows])
    truth = np.array([float(r["truth"]) for r in rows])
    freq = json.loads((out / "config.json").read_text())["frequencies"]
    top = max(freq)
    ncols = 3
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = figure(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows))
    for ax, name in zip(axes.flat, names, strict=False):
        pred = np.array([float(r[name]) for r in rows])
        mse = float(np.mean((pred - truth) ** 2))
        ax.plot(x, truth, color="black", linewidth=0.8, label="sin")
        ax.plot(x, pred, color=STYLE.get(name, ("tab:red", "-"))[0], linewidth=1.0, label=name)
        ax.set_title(f"{name} (test MSE {mse:.3g})", fontsize=9)
        ax.set_ylim(-1.6, 1.6)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"Learned functions vs ground truth, y = sin({top} x), seed 0, end of training")
    return save_figure(fig, out / f"functions_d{top}.png", dpi=110)


def _fmt(mean: float, se: float) -> str:
    return f"{mean:.3g} ± {se:.2g}" if math.isfinite(se) else f"{mean:.3g}"


def write_report(out: Path) -> list[Path]:
    """Write curves_d<F>.png, functions_d<top>.png and summary.md; return their paths."""
    cfg = json.loads((out / "config.json").read_text())
    variants: list[str] = cfg["variants"]
    freqs: list[int] = cfg["frequencies"]
    curves: dict[tuple[str, int], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _read(out / "results.csv"):
        curves[(r["variant"], int(r["frequency"]))][int(r["epoch"])].append(float(r["test_mse"]))
    files = [_plot_curves(out, curves, variants, f) for f in freqs]
    fn_path = _plot_functions(out)
    if fn_path is not None:
        files.append(fn_path)
    # Final test MSE per seed, keyed for paired comparisons with the standard residual.
    final: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for r in _read(out / "results.csv"):
        if int(r["epoch"]) == cfg["epochs"]:
            final[(r["variant"], int(r["frequency"]))][int(r["seed"])] = float(r["test_mse"])
    secs: dict[str, list[float]] = defaultdict(list)
    for r in _read(out / "timing.csv"):
        secs[r["variant"]].append(float(r["sec_per_epoch"]))
    n_seeds = max((len(v) for v in final.values()), default=0)
    lines = [
        "# sin study: summary",
        "",
        f"Target y = sin(d x) on [-pi, pi]; {cfg['n_train']} uniform training points per seed, "
        f"{cfg['n_test']}-point test grid; MLP width {cfg['width']}, {cfg['n_blocks']} blocks; "
        f"Adam lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['epochs']} epochs; "
        f"N(g) magnitude `{cfg['magnitude']}`; {n_seeds} seeds.",
        "",
        f"## Final test MSE (epoch {cfg['epochs']}), mean ± standard error over seeds",
        "",
        "| variant | " + " | ".join(f"d={f}" for f in freqs) + " |",
        "|---|" + "---|" * len(freqs),
    ]
    for v in variants:
        cells = [_fmt(*_mean_se(list(final[(v, f)].values()))) for f in freqs]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if "residual" in variants:
        lines += _paired_table(variants, freqs, final)
    lines += _timing_table(variants, secs)
    lines += ["", "Figures: " + ", ".join(f"`{p.name}`" for p in files), ""]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines))
    return [*files, summary]


def _paired_table(variants: list[str], freqs: list[int],
                  final: dict[tuple[str, int], dict[int, float]]) -> list[str]:
    lines = [
        "",
        "## Paired with `residual` (same seed: data, minibatch order, shared initial weights)",
        "",
        "Geometric mean over seeds of final MSE / residual's final MSE (< 1: better), "
        "and the number of seeds where the variant is lower.",
        "",
        "| variant | " + " | ".join(f"d={f}" for f in freqs) + " |",
        "|---|" + "---|" * len(freqs),
    ]
    for v in variants:
        cells = []
        for f in freqs:
            base, mine = final[("residual", f)], final[(v, f)]
            seeds = sorted(set(base) & set(mine))
            ratios = np.array([mine[s] / base[s] for s in seeds])
            ok = ratios[np.isfinite(ratios) & (ratios > 0)]
            geo = float(np.exp(np.mean(np.log(ok)))) if len(ok) else math.nan
            cells.append(f"{geo:.3g} ({int(np.sum(ratios < 1))}/{len(seeds)})")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return lines


def _timing_table(variants: list[str], secs: dict[str, list[float]]) -> list[str]:
    # Without the residual variant in the run there is no ratio to give: the column goes.
    ref = float(np.mean(secs["residual"])) if secs.get("residual") else None
    lines = [
        "",
        "## Training time per epoch (one torch thread per worker; shared CPU, so indicative)",
        "",
        "| variant | ms / epoch |" + (" × residual |" if ref else ""),
        "|---|---|" + ("---|" if ref else ""),
    ]
    for v in variants:
        ms = 1000 * float(np.mean(secs[v])) if secs.get(v) else math.nan
        lines.append(f"| {v} | {ms:.1f} |" + (f" {ms / (1000 * ref):.2f} |" if ref else ""))
    return lines
