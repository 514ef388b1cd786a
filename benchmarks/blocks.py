"""The gradient block against the identity block, per precision and memory layout.

Every (model, precision, layout) job is timed in one process, interleaved round by round,
and each gradient time is reported as a ratio to the identity time of the same rounds, since
absolute times on shared machines drift. GFLOP/s next to each time: convolution FLOPs
counted from the shapes by torch.utils.flop_counter (training includes the backward).
The table replaces its section of docs/benchmarks.md (or --write FILE).

Usage: python benchmarks/blocks.py [--rounds 7] [--families sedsr,edsr-baseline]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from srgrad.models.precision import autocast, channels_last, resolve_precision, to_channels_last
from srgrad.models.registry import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_tables import machine_line, replace_section, section  # noqa: E402

Setting = tuple[str, str]  # (precision, memory layout)
COMPILED_LAYOUT = "channels_last + compile"
VARIANTS = {"identity": "{family}", "gradient (analytic g)": "{family}-grad",
            "scaled skip (no g)": "{family}-scaled"}
Job = Callable[[], None]


def settings_for(device: torch.device, compile: bool, emulated_bf16: bool) -> list[Setting]:
    """The (precision, layout) rows to time; the first is the fp32 NCHW reference."""
    auto = resolve_precision("auto", device)
    settings = [("fp32", "NCHW"), ("fp32", "channels_last")]
    if auto != "fp32" or emulated_bf16:
        # bf16 emulated (no amx_bf16 / avx512_bf16) runs up to 10x slower than fp32 and is
        # never what auto picks: its rows would cost most of the run and inform no choice.
        settings.append(("bf16", "channels_last"))
    if compile:
        settings.append((auto, COMPILED_LAYOUT))
    return settings


def make_jobs(name: str, precision: str, layout: str, batch: int, patch: int, size: int,
              device: torch.device) -> tuple[Job, Job]:
    """(train step, inference) closures for one model in one precision and layout."""
    torch.manual_seed(0)
    model = build_model(name, 2).to(device)
    lr = torch.rand(batch, 3, patch, patch, device=device) * 255
    hr = torch.rand(batch, 3, 2 * patch, 2 * patch, device=device) * 255
    big = torch.rand(1, 3, size, size, device=device) * 255
    if layout.startswith("channels_last"):
        model, lr, big = to_channels_last(model), channels_last(lr), channels_last(big)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    forward = torch.compile(model) if layout.endswith("compile") else model

    def train() -> None:
        with autocast(device, precision):
            loss = torch.nn.functional.l1_loss(forward(lr).float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode(), autocast(device, precision):
            forward(big)
        model.train()

    return train, infer


def flops(job: Job) -> float:
    with FlopCounterMode(display=False) as counter:
        job()
    return float(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_jobs(jobs: dict[tuple, Job], rounds: int, device: torch.device) -> dict[tuple, float]:
    for _ in range(2):  # warm-up: allocator, oneDNN primitive caches, compiled graphs
        for job in jobs.values():
            job()
    samples: dict[tuple, list[float]] = {key: [] for key in jobs}
    for _ in range(rounds):
        for key, job in jobs.items():
            _sync(device)
            start = time.perf_counter()
            job()
            _sync(device)
            samples[key].append(time.perf_counter() - start)
    return {key: statistics.median(v) * 1000 for key, v in samples.items()}


def bench(families: list[str], settings: list[Setting], rounds: int, batch: int, patch: int,
          size: int, device: torch.device) -> tuple[dict[tuple, float], dict[tuple, float]]:
    """Median ms per job, and FLOPs per (family, variant, kind): the work does not depend
    on precision or layout, so it is counted once, on the eager fp32 NCHW model."""
    jobs: dict[tuple, Job] = {}
    work: dict[tuple, float] = {}
    for family in families:
        for precision, layout in settings:
            for variant, pattern in VARIANTS.items():
                train, infer = make_jobs(pattern.format(family=family), precision, layout,
                                         batch, patch, size, device)
                jobs[(family, precision, layout, variant, "train")] = train
                jobs[(family, precision, layout, variant, "infer")] = infer
                if (precision, layout) == settings[0]:
                    work[(family, variant, "train")] = flops(train)
                    work[(family, variant, "infer")] = flops(infer)
    return time_jobs(jobs, rounds, device), work


def table(ms: dict[tuple, float], work: dict[tuple, float], families: list[str],
          settings: list[Setting]) -> list[str]:
    lines = ["| model | precision | layout | variant | train ms | GFLOP/s | x identity | "
             "vs fp32 NCHW | inference ms | GFLOP/s | x identity | vs fp32 NCHW |",
             "|" + "---|" * 12]
    for family in families:
        for precision, layout in settings:
            for variant in VARIANTS:
                cols = []
                for kind in ("train", "infer"):
                    key = (family, precision, layout, variant, kind)
                    ident = ms[(family, precision, layout, "identity", kind)]
                    base = ms[(family, "fp32", "NCHW", variant, kind)]
                    t = ms[key]
                    gflop = work[(family, variant, kind)] / 1e9
                    cols += [f"{t:.1f}", f"{gflop / t * 1e3:.0f}", f"{t / ident:.2f}x",
                             f"{base / t:.2f}x"]
                lines.append(f"| {family} | {precision} | {layout} | {variant} | "
                             + " | ".join(cols) + " |")
    return lines


def summary(ms: dict[tuple, float], families: list[str], settings: list[Setting],
            device: torch.device) -> list[str]:
    auto = resolve_precision("auto", device)
    layout = "channels_last"
    compiled = (auto, COMPILED_LAYOUT)
    lines = [f"`--precision auto` resolves to **{auto}** on this {device.type}."]
    for family in families:
        grad = "gradient (analytic g)"
        parts = []
        for kind, word in (("train", "training step"), ("infer", "inference")):
            ratio = ms[(family, auto, layout, grad, kind)] / ms[(family, auto, layout,
                                                                   "identity", kind)]
            speedup = ms[(family, "fp32", "NCHW", grad, kind)] / ms[(family, auto, layout,
                                                                     grad, kind)]
            parts.append(f"{word} {ratio:.2f}x identity, {speedup:.2f}x faster than fp32 NCHW")
        lines.append(f"- {family}-grad in auto ({auto}, channels_last): " + "; ".join(parts))
        if compiled in settings:
            eager = ms[(family, auto, layout, grad, "train")]
            fast = ms[(family, *compiled, grad, "train")]
            ident = ms[(family, *compiled, "identity", "train")]
            lines.append(f"- {family}-grad with torch.compile (`srgrad train --compile`): "
                         f"training step {eager / fast:.2f}x faster than eager {auto} "
                         f"channels_last, {fast / ident:.2f}x the compiled identity block")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--families", default="sedsr,edsr-baseline")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--infer-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true",
                        help="add rows of auto's precision + torch.compile")
    parser.add_argument("--emulated-bf16", action="store_true",
                        help="keep the bf16 rows on a CPU without native bf16")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--write", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = settings_for(device, args.compile, args.emulated_bf16)
    if args.compile:
        # Every compiled model shares EDSR.forward's cache, and each needs a graph for
        # training and one for inference_mode: raise dynamo's limit above 2 x models.
        torch._dynamo.config.cache_size_limit = 64
    if args.threads:
        torch.set_num_threads(args.threads)
    families = args.families.split(",")
    ms, work = bench(families, settings, args.rounds, args.batch, args.patch,
                     args.infer_size, device)
    command = "python benchmarks/blocks.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"Command: `{command.strip()}`. {machine_line(device)}",
        f"Training step: batch {args.batch}, {args.patch}x{args.patch} LR patches, x2, L1 + Adam; "
        f"inference: one {args.infer_size}x{args.infer_size} image under inference_mode. "
        f"Median of {args.rounds} interleaved rounds.", "",
        *table(ms, work, families, settings), "", *summary(ms, families, settings, device)])
    print(text)
    replace_section(args.write, section("blocks", device), text)


if __name__ == "__main__":
    main()
