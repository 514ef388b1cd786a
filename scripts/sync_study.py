"""Copy a study's records (not its weights) from its run root into docs/runs/<study>/.

Usage: python scripts/sync_study.py ~/srgrad-runs/edsr-baseline-x2 [docs/runs/edsr-baseline-x2]
For each run folder <run>: metrics.csv -> <run>.csv, model_card.json -> <run>.json,
test_scores.json -> <run>_test_scores.json, curve.png -> <run>.png, and the run's recipe
<run>.toml beside the folder. Runs still training copy what they have so far, so a session
can commit interim logs before it ends; weights stay behind (megabytes each, and the
recipes retrain them).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

RECORDS = {"metrics.csv": ".csv", "model_card.json": ".json",
           "test_scores.json": "_test_scores.json", "curve.png": ".png"}


def sync(root: Path, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        sources = {run / name: dest / f"{run.name}{suffix}" for name, suffix in RECORDS.items()}
        sources[root / f"{run.name}.toml"] = dest / f"{run.name}.toml"
        for source, target in sources.items():
            if source.is_file():
                shutil.copyfile(source, target)
                copied.append(target)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the study's folder under the run root")
    parser.add_argument("dest", type=Path, nargs="?", help="default docs/runs/<study name>")
    args = parser.parse_args()
    dest = args.dest or Path("docs/runs") / args.root.name
    for path in sync(args.root, dest):
        print(path)


if __name__ == "__main__":
    main()
