"""Print the model-card table of every shipped weights file (from its own metadata).

Usage: python scripts/model_cards.py [--scores docs/eval/x2.json ...] > weights/CARDS.md
Each weights file carries its training card (written by `srgrad train`); the scores come from
`srgrad eval --report FILE.json` runs, matched by model name and scale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from srgrad.models.weights import read_metadata, weights_dirs

DATASETS = ("Set5", "Set14", "B100", "Urban100")


def load_scores(paths: list[Path]) -> dict[tuple[str, int, str], tuple[float, float]]:
    scores = {}
    for path in paths:
        for row in json.loads(path.read_text())["results"]:
            scores[(row["model"], row["scale"], row["dataset"])] = (row["psnr"], row["ssim"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scores", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    scores = load_scores(args.scores)
    files = sorted({f for d in weights_dirs() for f in d.glob("*.safetensors")})
    print("| file | model | block | data | iterations | train time | machine | "
          + " | ".join(DATASETS) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(DATASETS))
    for file in files:
        meta = read_metadata(file)
        card, cfg = meta.get("card", {}), meta["config"]
        block = cfg["block"]
        kind = {"identity": "identity",
                "scaled": f"scaled (1-s) x, alpha {block['alpha']:+g}, = "
                          f"{card.get('derived_from', '?')} with g := 0"}.get(
            block["skip"],
            f"{block['skip']} {block['norm']}/{block['magnitude']}, alpha0 {block['alpha']:+g}")
        done = card.get("stopped_by_time_limit_at") or card.get("iterations")
        cells = []
        for ds in DATASETS:
            hit = scores.get((cfg["name"], cfg["scale"], ds.lower()))
            cells.append(f"{hit[0]:.2f} / {hit[1]:.4f}" if hit else "-")
        data = ", ".join(Path(d).name for d in card.get("data", []))
        print(f"| `{file.name}` | {cfg['name']} x{cfg['scale']} | {kind} | {data} | {done} "
              f"| {card.get('train_seconds', '-')} s | {card.get('device', '-')} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
