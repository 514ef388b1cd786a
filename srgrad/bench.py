"""Side-by-side timings of the block variants, behind `make bench`.

Every variant is timed in the same process, interleaved round by round, and reported as a
ratio to the identity block measured in the same rounds, since absolute times on shared
machines drift. Usage: python -m srgrad.bench [--device cpu|cuda] [--rounds N] [--write FILE]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from srgrad.models.registry import build_model

VARIANTS = {
    "identity": ("{family}", {}),
    "analytic": ("{family}-grad", {"grad_impl": "analytic"}),
    "autograd": ("{family}-grad", {"grad_impl": "autograd"}),
    "analytic, grad_through": ("{family}-grad", {"grad_impl": "analytic", "grad_through": True}),
    "autograd, grad_through": ("{family}-grad", {"grad_impl": "autograd", "grad_through": True}),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _train_step(model, opt, lr, hr) -> Callable[[], None]:
    def step() -> None:
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _infer(model, lr) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            model(lr)

    return run


def bench_family(
    family: str, device: torch.device, rounds: int, batch: int, patch: int, infer_size: int
) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    lr = torch.rand(batch, 3, patch, patch, device=device) * 255
    hr = torch.rand(batch, 3, patch * 2, patch * 2, device=device) * 255
    big = torch.rand(1, 3, infer_size, infer_size, device=device) * 255
    jobs: dict[tuple[str, str], Callable[[], None]] = {}
    for label, (pattern, overrides) in VARIANTS.items():
        model = build_model(pattern.format(family=family), 2, **overrides).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        jobs[(label, "train")] = _train_step(model, opt, lr, hr)
        if "grad_through" not in label and label != "autograd":
            jobs[(label, "infer")] = _infer(model.eval(), big)
        elif label == "autograd":  # autograd g cannot run under inference_mode: use no_grad

            def run(m=model.eval()):
                with torch.no_grad():
                    m(big)

            jobs[(label, "infer")] = run
    times: dict[tuple[str, str], list[float]] = {k: [] for k in jobs}
    for job in jobs.values():  # warm-up (allocator, cudnn autotune)
        job()
    for _ in range(rounds):
        for key, job in jobs.items():
            _sync(device)
            t0 = time.perf_counter()
            job()
            _sync(device)
            times[key].append(time.perf_counter() - t0)
    result: dict[str, dict[str, float]] = {}
    for (label, kind), samples in times.items():
        result.setdefault(label, {})[kind] = statistics.median(samples) * 1000
    return result


def bench_sampler(device: torch.device, rounds: int, batch: int, patch: int) -> float:
    """Median ms to draw one training batch (crop + flips/rotations) from in-memory images."""
    from srgrad.train.data import PatchSampler

    gen = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(50):  # BSD-sized HR images, x2
        hr = torch.randint(0, 256, (3, 320, 480), dtype=torch.uint8, generator=gen).to(device)
        pairs.append((hr[:, ::2, ::2].contiguous(), hr))
    sampler = PatchSampler(pairs, 2, patch, batch, seed=0)
    samples = []
    for _ in range(max(rounds, 20)):
        _sync(device)
        t0 = time.perf_counter()
        sampler.sample()
        _sync(device)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


def report(results: dict[str, dict[str, dict[str, float]]], setup: str) -> str:
    lines = [
        setup,
        "",
        "| model | variant | train step ms | x identity | inference ms | x identity |",
        "|---|---|---|---|---|---|",
    ]
    for family, rows in results.items():
        base = rows["identity"]
        for label, row in rows.items():
            infer = row.get("infer")
            infer_cols = (
                f"{infer:.1f} | {infer / base['infer']:.2f}x" if infer is not None else "- | -"
            )
            lines.append(
                f"| {family} | {label} | {row['train']:.1f} | "
                f"{row['train'] / base['train']:.2f}x | {infer_cols} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--infer-size", type=int, default=256)
    parser.add_argument("--families", default="sedsr,edsr-baseline")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--write", default=None, help="Append the table to this markdown file.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {
        f: bench_family(f, device, args.rounds, args.batch, args.patch, args.infer_size)
        for f in args.families.split(",")
    }
    setup = (
        f"Machine: {machine(device)}. Training step: batch {args.batch}, {args.patch}x"
        f"{args.patch} LR patches, x2, L1 + Adam. Inference: one {args.infer_size}x"
        f"{args.infer_size} image. Median of {args.rounds} interleaved rounds."
    )
    text = report(results, setup)
    data_ms = bench_sampler(device, args.rounds, args.batch, args.patch)
    lines = ["", "| model | variant | data ms / batch | compute ms / step | iterations / s |",
             "|---|---|---|---|---|"]
    for family, rows in results.items():
        for label in ("identity", "analytic"):
            step = rows[label]["train"]
            lines.append(f"| {family} | {label} | {data_ms:.2f} | {step:.1f} | "
                         f"{1000 / (step + data_ms):.2f} |")
    text += "\n" + "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "a") as fh:
            fh.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
