"""Train srgrad's shipped weights in one timed session on one GPU (or, tiny, on a CPU).

Phases, each a set of `srgrad train` processes running side by side on the device:
  0. LR cache for every training image at x2, x3, x4 (once, shared by all runs)
  probe: a few hundred iterations of every sweep run, to measure the step time
  A. sweep of gradient-residual settings + identity control on a held-out split of the
     training images (holdout:20, never a test set); the best gradient setting is chosen
  B. x2: sedsr-grad (chosen setting) and sedsr, seeds 0, 1, 2, identical iterations;
     edsr-baseline-grad x2 (bf16 autocast) beside them, stopped by its time limit
  C. x3 and x4 of sedsr-grad and sedsr from their seed-0 x2 weights (--init-from)
Every run's folder (weights, metrics.csv, model card, curve) is packed into tar files.

Usage: python scripts/train_shipped.py --data DIR --val-root DIR --out DIR [--budget S]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SWEEP = {
    "identity": ("sedsr", []),
    "pixel-unit-a3": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "unit", "--alpha", "3"]),
    "pixel-unit-a0": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "unit", "--alpha", "0"]),
    "pixel-unit-a-3": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "unit", "--alpha", "-3"]),
    "pixel-unit-a3-frozen": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "unit",
                                            "--alpha", "3", "--freeze-alpha"]),
    "sample-unit-a3": ("sedsr-grad", ["--norm", "sample", "--magnitude", "unit", "--alpha", "3"]),
    "pixel-input-a3": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "input", "--alpha", "3"]),
    "pixel-input-a-3": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "input", "--alpha", "-3"]),
    "pixel-input-a0": ("sedsr-grad", ["--norm", "pixel", "--magnitude", "input", "--alpha", "0"]),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _cache_one(job: tuple[str, int, str]) -> None:
    from srgrad.train.data import load_training_image

    path, scale, cache = job
    load_training_image(Path(path), scale, Path(cache))


def build_cache(data: Path, cache: Path, workers: int) -> None:
    from srgrad.data.datasets import hr_training_paths

    paths = hr_training_paths([data])
    jobs = [(str(p), s, str(cache)) for p in paths for s in (2, 3, 4)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_cache_one, jobs, chunksize=8))


def launch(name: str, model: str, extra: list[str], a: argparse.Namespace, root: Path,
           iters: int, seed: int, scale: int, val: str, time_limit: float) -> subprocess.Popen:
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "srgrad", "train", "--model", model, "--scale", str(scale),
           "--data", str(a.data), "--val", val, "--val-root", str(a.val_root),
           "--iters", str(iters), "--batch", str(a.batch), "--patch", "48", "--lr", str(a.lr),
           "--warmup", str(min(500, iters // 10)), "--ema", "0.999", "--seed", str(seed),
           "--out", str(out), "--device", a.device, "--cache-dir", str(a.cache),
           "--val-every", str(max(100, iters // 5)), "--ckpt-every", str(max(200, iters // 4)),
           "--log-every", str(max(5, min(50, iters // 6))), "--quiet",
           "--time-limit", str(time_limit), *extra]
    (out / "command.txt").write_text(" ".join(cmd) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=(out / "train.log").open("w"), stderr=subprocess.STDOUT,
                            env=env)


def wait_all(procs: dict[str, subprocess.Popen]) -> dict[str, int]:
    codes = {name: p.wait() for name, p in procs.items()}
    for name, code in codes.items():
        if code != 0:
            log(f"run {name} exited with {code}")
    return codes


def rows(run: Path) -> list[dict[str, str]]:
    path = run / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def step_ms(run: Path) -> float:
    times = [float(r["step_ms"]) + float(r["data_ms"])
             for r in rows(run)[1:] if r.get("step_ms")]
    return sorted(times)[len(times) // 2] if times else float("nan")


def final_val(run: Path) -> float:
    vals = [float(r["val_psnr"]) for r in rows(run) if r.get("val_psnr")]
    return vals[-1] if vals else float("-inf")


def pack(root: Path, dest: Path, name: str) -> None:
    with tarfile.open(dest / f"{name}.tar.gz", "w:gz") as tar:
        for file in sorted(root.rglob("*")):
            if file.is_file() and file.suffix != ".pt" and file.name != "best.safetensors":
                tar.add(file, arcname=str(file.relative_to(root.parent)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--val-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/srgrad-runs"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/srgrad-cache"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget", type=float, default=500.0, help="seconds for the whole script")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--probe-iters", type=int, default=200)
    p.add_argument("--workers", type=int, default=14)
    p.add_argument("--no-edsr", action="store_true")
    p.add_argument("--sweep", default=",".join(SWEEP), help="subset of sweep names (smoke tests)")
    a = p.parse_args()
    for name in set(SWEEP) - set(a.sweep.split(",")):
        del SWEEP[name]
    t0 = time.time()
    left = lambda: a.budget - (time.time() - t0)  # noqa: E731
    a.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"budget_s": a.budget, "batch": a.batch, "lr": a.lr}

    build_cache(a.data, a.cache, a.workers)
    log(f"LR cache ready ({time.time() - t0:.0f}s)")

    probe_root = a.work / "probe"
    procs = {n: launch(n, m, x, a, probe_root, a.probe_iters, 0, 2, "none", 60)
             for n, (m, x) in SWEEP.items()}
    wait_all(procs)
    probe_ms = max(step_ms(probe_root / n) for n in SWEEP)
    summary["probe_step_ms_9_procs"] = {n: step_ms(probe_root / n) for n in SWEEP}
    log(f"probe: slowest {probe_ms:.1f} ms/step with {len(SWEEP)} runs side by side")

    # Time left after the probe: A 25%, B 50%, C 25% (minus packing and start-up margins).
    usable = left() - 40
    budget_a, budget_b, budget_c = 0.22 * usable, 0.55 * usable, 0.23 * usable
    iters_a = max(100, int(0.85 * (budget_a - 15) * 1000 / probe_ms))
    log(f"phase A: {iters_a} iterations per run, {budget_a:.0f}s")
    sweep_root = a.work / "sweep"
    procs = {n: launch(n, m, x, a, sweep_root, iters_a, 0, 2, "holdout:20", budget_a - 10)
             for n, (m, x) in SWEEP.items()}
    wait_all(procs)
    scores = {n: final_val(sweep_root / n) for n in SWEEP}
    grad_scores = {n: v for n, v in scores.items() if n != "identity"}
    best = max(grad_scores, key=grad_scores.get)
    summary.update(sweep_iters=iters_a, sweep_holdout_psnr=scores, chosen=best)
    log(f"sweep: {json.dumps(scores)}; chosen {best}")
    pack(sweep_root, a.out, "sweep")

    # B: 6 sedsr runs (+1 heavier edsr-baseline): about 2/3 of the probe's load per run.
    iters_b = max(100, int(0.8 * (budget_b - 15) * 1000 / (probe_ms * 7 / 9)))
    main_root = a.work / "x2"
    grad_flags = SWEEP[best][1]
    procs = {}
    for seed in (0, 1, 2):
        name = f"sedsr-grad_x2_s{seed}"
        procs[name] = launch(name, "sedsr-grad", grad_flags, a, main_root, iters_b, seed, 2,
                             "set5", budget_b - 10)
        procs[f"sedsr_x2_s{seed}"] = launch(f"sedsr_x2_s{seed}", "sedsr", [], a, main_root,
                                            iters_b, seed, 2, "set5", budget_b - 10)
    if not a.no_edsr:
        procs["edsr-baseline-grad_x2"] = launch(
            "edsr-baseline-grad_x2", "edsr-baseline-grad", ["--precision", "bf16", "--batch", "16"],
            a, main_root, 10 * iters_b, 0, 2, "set5", budget_b - 10)
    log(f"phase B: {iters_b} iterations per sedsr run, {budget_b:.0f}s")
    wait_all(procs)
    summary["x2_iters"] = iters_b
    summary["x2_set5"] = {n: final_val(main_root / n) for n in procs}
    pack(main_root, a.out, "x2")

    budget_c = min(budget_c, left() - 25)
    iters_c = max(100, int(0.7 * (budget_c - 15) * 1000 / (probe_ms * 5 / 9)))
    c_root = a.work / "x34"
    procs = {}
    for model, flags in (("sedsr-grad", grad_flags), ("sedsr", [])):
        init = main_root / f"{model}_x2_s0" / f"{model}_x2.safetensors"
        for scale in (3, 4):
            name = f"{model}_x{scale}"
            procs[name] = launch(name, model, [*flags, "--init-from", str(init)], a, c_root,
                                 iters_c, 0, scale, "set5", budget_c - 10)
    log(f"phase C: {iters_c} iterations per run, {budget_c:.0f}s")
    wait_all(procs)
    summary["x34_iters"] = iters_c
    summary["x34_set5"] = {n: final_val(c_root / n) for n in procs}
    pack(c_root, a.out, "x34")
    summary["elapsed_s"] = time.time() - t0
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(f"done in {summary['elapsed_s']:.0f}s")


if __name__ == "__main__":
    main()
