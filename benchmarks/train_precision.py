"""Does bf16 training match fp32? sedsr and sedsr-grad x2, fp32 vs bf16, paired by seed.

Each (model, seed) pair shares its patches and initial weights (same seed), so the bf16 -
fp32 difference in held-out PSNR is paired. Validation: 20 held-out training images
(holdout:20), never a test set. Runs go one thread each, `--jobs` at a time, with their
state under `--root` (outside the work tree; each resumes from its last.pt); the table is
written into docs/benchmarks.md between its markers.

Decision rule, fixed before the results: `srgrad train` defaults to bf16 (precision auto)
only if, for both models, the mean over seeds of (bf16 - fp32) held-out PSNR at the last
iteration lies within 0.02 dB of zero; otherwise bf16 stays opt-in.

Usage: python benchmarks/train_precision.py [--iters 2000] [--seeds 0,1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from doc_tables import machine_line, replace_section, section  # noqa: E402

from srgrad.train.study import summarize  # noqa: E402

MODELS = ("sedsr", "sedsr-grad")
PRECISIONS = ("fp32", "bf16")
THRESHOLD_DB = 0.02


def train_command(model: str, precision: str, seed: int, iters: int, out: Path) -> list[str]:
    return [
        str(REPO / ".venv/bin/srgrad"), "train", "--model", model, "--scale", "2",
        "--data", str(REPO.parent / "shared/datasets/train"), "--val", "holdout:20",
        "--iters", str(iters), "--batch", "16", "--patch", "48", "--lr", "5e-4",
        "--warmup", "20", "--val-every", "500", "--log-every", "50", "--ckpt-every", "100",
        "--seed", str(seed), "--device", "cpu", "--precision", precision, "--out", str(out),
        "--quiet",
    ]


def run_one(model: str, precision: str, seed: int, iters: int, root: Path) -> Path:
    out = root / f"{model}_{precision}_s{seed}"
    if (out / f"{model}_x2.safetensors").exists():
        return out
    cmd = train_command(model, precision, seed, iters, out)
    if (out / "last.pt").exists():
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.log", "a") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def last_val_and_step_ms(run: Path) -> tuple[float, float]:
    done = summarize(run)
    return done.val_psnr, done.step_ms


def table(root: Path, seeds: list[int], iters: int) -> tuple[str, bool]:
    lines = ["| model | seed | fp32 held-out dB | bf16 held-out dB | bf16 - fp32 | "
             "fp32 ms/step | bf16 ms/step |", "|---|---|---|---|---|---|---|"]
    verdicts = []
    for model in MODELS:
        deltas = []
        for seed in seeds:
            (v32, t32), (v16, t16) = (last_val_and_step_ms(root / f"{model}_{p}_s{seed}")
                                      for p in PRECISIONS)
            deltas.append(v16 - v32)
            lines.append(f"| {model} | {seed} | {v32:.3f} | {v16:.3f} | {v16 - v32:+.3f} | "
                         f"{t32:.0f} | {t16:.0f} |")
        mean = statistics.mean(deltas)
        se = statistics.stdev(deltas) / len(deltas) ** 0.5 if len(deltas) > 1 else float("nan")
        verdicts.append(abs(mean) <= THRESHOLD_DB)
        lines.append(f"| {model} | mean | | | **{mean:+.3f} ± {se:.3f}** | | |")
    passed = all(verdicts)
    lines += ["", f"Decision rule (fixed before the results): bf16 becomes the training default "
              f"if, for both models, the seed mean of bf16 - fp32 lies within {THRESHOLD_DB} "
              f"dB. Outcome: **{'bf16 is the default' if passed else 'bf16 stays opt-in'}**. "
              f"{iters} iterations, seeds {', '.join(map(str, seeds))}, held-out PSNR (Y) on "
              "holdout:20 at the last iteration; ms/step is the median logged compute time "
              "(one thread, two runs sharing the two cores)."]
    return "\n".join(lines), passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path.home() / "srgrad-runs/precision-x2")
    parser.add_argument("--write", type=Path, default=REPO / "docs/benchmarks.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(m, p, s) for s in seeds for m in MODELS for p in PRECISIONS]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda j: run_one(*j, args.iters, args.root), jobs))
    text, _ = table(args.root, seeds, args.iters)
    command = "python benchmarks/train_precision.py " + " ".join(sys.argv[1:])
    print(text)
    replace_section(args.write, section("train-precision"),
                    f"Command: `{command.strip()}`. {machine_line()}\n\n{text}")


if __name__ == "__main__":
    main()
