"""Copy a study's records (not its weights) from its run root into docs/runs/<study>/, or
back (--restore) onto a new machine so that a study resumes where its records end.

Usage: python scripts/sync_study.py ~/srgrad-runs/edsr-baseline-x2 [docs/runs/edsr-baseline-x2]
       python scripts/sync_study.py --restore ~/srgrad-runs/edsr-baseline-x2 [docs/runs/...]
For each run folder <run>: metrics.csv -> <run>.csv, model_card.json -> <run>.json,
test_scores.json -> <run>_test_scores.json, gradient_share.json -> <run>_share.json,
curve.png -> <run>.png, and the run's recipe <run>.toml beside the folder. Runs still
training copy what they have so far, so a session can commit interim logs before it ends;
weights stay behind (megabytes each, and the recipes retrain them).

--restore brings back only finished runs (those with a model card): `srgrad study` skips a
run whose folder holds one, and its report reads the rest from these records. A run cut off
part-way has no checkpoint in the records, so it trains again from the start. Files already
in the run root are kept.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

RECORDS = {"metrics.csv": ".csv", "model_card.json": ".json",
           "test_scores.json": "_test_scores.json", "gradient_share.json": "_share.json",
           "curve.png": ".png"}


def _pairs(root: Path, dest: Path, run: str) -> dict[Path, Path]:
    """Run-root file -> its record, for run `run`."""
    pairs = {root / run / name: dest / f"{run}{suffix}" for name, suffix in RECORDS.items()}
    pairs[root / f"{run}.toml"] = dest / f"{run}.toml"
    return pairs


def sync(root: Path, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for run in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for source, target in _pairs(root, dest, run).items():
            if source.is_file():
                shutil.copyfile(source, target)
                copied.append(target)
    return copied


def restore(root: Path, dest: Path) -> list[Path]:
    """The records of finished runs back into their run folders under `root`."""
    card = RECORDS["model_card.json"]
    others = tuple(suffix for suffix in RECORDS.values() if suffix != card)
    finished = sorted(path.name.removesuffix(card) for path in dest.glob(f"*{card}")
                      if not path.name.endswith(others))
    copied = []
    for run in finished:
        (root / run).mkdir(parents=True, exist_ok=True)
        for target, record in _pairs(root, dest, run).items():
            if record.is_file() and not target.exists():
                shutil.copyfile(record, target)
                copied.append(target)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the study's folder under the run root")
    parser.add_argument("dest", type=Path, nargs="?", help="default docs/runs/<study name>")
    parser.add_argument("--restore", action="store_true",
                        help="copy the records of finished runs back into the run root")
    args = parser.parse_args()
    dest = args.dest or Path("docs/runs") / args.root.name
    if args.restore and not dest.is_dir():
        parser.error(f"no records at {dest}: name the study's folder under docs/runs")
    for path in (restore if args.restore else sync)(args.root, dest):
        print(path)


if __name__ == "__main__":
    main()
