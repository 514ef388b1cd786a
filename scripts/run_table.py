"""Markdown table of finished training runs: held-out PSNR, train loss, gates, time.

Usage: python scripts/run_table.py runs/sweep [--baseline identity] [--plot curves.png]
Reads each run folder's model_card.json and metrics.csv (written by `srgrad train`). Train L1
is the mean of the last five logged losses (0-255 scale), as in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from srgrad.train.curves import plot_runs, read_metrics, series


def summarize(run: Path) -> dict:
    card = json.loads((run / "model_card.json").read_text())
    losses = [loss for _, loss in series(read_metrics(run / "metrics.csv"), "loss")][-5:]
    gates = [float(g) for g in card.get("gates") or []]
    return {"name": run.name, "val": card["val_last_psnr"], "loss": sum(losses) / len(losses),
            "gates": (min(gates), max(gates)) if gates else None,
            "seconds": card["train_seconds"], "iters": card["iterations"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--baseline", default="identity")
    parser.add_argument("--plot", type=Path, help="also draw every run's curves in one PNG")
    args = parser.parse_args()
    runs = [summarize(p) for p in sorted(args.root.iterdir()) if (p / "model_card.json").exists()]
    base = next((r for r in runs if r["name"] == args.baseline), None)
    print("| setting | held-out PSNR | minus control | train L1 | gates sigmoid(alpha), end "
          "| iterations | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(runs, key=lambda r: -r["val"]):
        diff = f"{r['val'] - base['val']:+.3f}" if base and r is not base else ""
        gates = f"{r['gates'][0]:.3f}-{r['gates'][1]:.3f}" if r["gates"] else ""
        print(f"| {r['name']} | {r['val']:.3f} | {diff} | {r['loss']:.3f} | {gates} "
              f"| {r['iters']} | {r['seconds']:.0f} |")
    if args.plot:
        plot_runs({r["name"]: args.root / r["name"] / "metrics.csv" for r in runs}, args.plot,
                  title=str(args.root))


if __name__ == "__main__":
    main()
