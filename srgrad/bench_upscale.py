"""Memory and throughput of `srgrad upscale` (run: python -m srgrad.bench_upscale).

1. A 4000x3000 RGB PNG is upscaled x2 by the full file pipeline (read, automatic tiling,
   write PNG) in a child process; its peak resident memory (ru_maxrss) and time are reported.
   The target is a peak RSS of at most 2.5 GB, which the automatic tiling budget
   (srgrad.infer.MEMORY_BUDGET) is sized for.
2. Throughput in output megapixels per second for x2, x3 and x4 on a smaller image
   (in-process, model time only, after a warm-up).

Shipped weights are used when present, otherwise random weights of the same architecture
(memory and speed do not depend on the weight values). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgrad.infer import MEMORY_BUDGET, auto_tile, load_model, super_resolve
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights, shipped_weights_path

SAMPLE = Path(__file__).resolve().parent / "assets" / "sample.png"
TARGET_RSS_GB = 2.5


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def test_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The bundled photo stretched to size, plus grain (so PNG sizes are realistic)."""
    base = Image.open(SAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 4, (height, width, 3))
    return np.clip(np.asarray(base) + noise, 0, 255).astype(np.uint8)


def weights_for(name: str, scale: int, folder: Path) -> tuple[Path, bool]:
    """(weights file, shipped?): shipped weights, or random ones saved into folder."""
    shipped = shipped_weights_path(name, scale)
    if shipped is not None:
        return shipped, True
    torch.manual_seed(0)
    path = folder / f"{name}_x{scale}.safetensors"
    return save_weights(build_model(name, scale), model_config(name, scale), path), False


def child(source: str, output: str, weights: str, device: str) -> None:
    """Runs in a fresh process: the file pipeline, then report time and peak RSS as JSON."""
    from srgrad.upscale_files import upscale_paths

    tiles = [1]
    start = time.perf_counter()
    report = upscale_paths([Path(source)], out=Path(output), weights=Path(weights), device=device,
                           force=True, on_tile=lambda done, total: tiles.append(total))
    seconds = time.perf_counter() - start
    assert report.failed == 0, [o.message for o in report.outcomes]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_gb": peak_kb * 1024 / 1e9,
                      "tiles": tiles[-1]}))


def big_image_row(size: tuple[int, int], scale: int, name: str, device: str,
                  folder: Path) -> str:
    width, height = size
    weights, shipped = weights_for(name, scale, folder)
    source = folder / "big.png"
    Image.fromarray(test_image(width, height)).save(source, compress_level=1)
    output = folder / f"big_x{scale}.png"
    command = [sys.executable, "-m", "srgrad.bench_upscale", "--child", str(source),
               str(output), str(weights), device]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    tile: int | str | None = "auto"
    if device == "cpu":
        model = build_model(name, scale)
        tile = auto_tile(model, height, width, scale, model.receptive_radius() + 1, MEMORY_BUDGET)
    verdict = "yes" if result["peak_rss_gb"] <= TARGET_RSS_GB else "**no**"
    return (f"| {width}x{height} | x{scale} | {name}{'' if shipped else ' (random)'} | "
            f"{tile or 'none'} ({result['tiles']} tiles) | {result['seconds']:.1f} | "
            f"{result['peak_rss_gb']:.2f} | {verdict} |")


def throughput_rows(size: tuple[int, int], name: str, device: str, folder: Path) -> list[str]:
    width, height = size
    lr = test_image(width, height, seed=1)
    rows = []
    for scale in (2, 3, 4):
        path, shipped = weights_for(name, scale, folder)
        model = load_model(path, device=device)
        super_resolve(model, lr[:64, :64])  # warm-up
        start = time.perf_counter()
        super_resolve(model, lr)
        seconds = time.perf_counter() - start
        out_mp = width * height * scale * scale / 1e6
        rows.append(f"| {width}x{height} | x{scale} | {name}{'' if shipped else ' (random)'} | "
                    f"{out_mp:.2f} | {seconds:.2f} | {out_mp / seconds:.3f} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000", help="big image, WIDTHxHEIGHT")
    parser.add_argument("--scale", type=int, default=2, help="scale for the big image")
    parser.add_argument("--small", default="480x360", help="throughput image, WIDTHxHEIGHT")
    parser.add_argument("--model", default="sedsr-grad")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("IN", "OUT", "WEIGHTS", "DEVICE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; activation budget "
          f"{MEMORY_BUDGET / 2**30:.1f} GiB\n")
    with tempfile.TemporaryDirectory(prefix="srgrad-bench-") as tmp:
        folder = Path(tmp)
        if not args.skip_big:
            print("| input | scale | model | tile (LR px) | seconds (read+upscale+write) | "
                  "peak RSS (GB) | <= 2.5 GB |")
            print("|---|---|---|---|---|---|---|")
            print(big_image_row(parse_size(args.size), args.scale, args.model, args.device,
                                folder), flush=True)
            print()
        print("| input | scale | model | output MP | seconds | output MP/s |")
        print("|---|---|---|---|---|---|")
        for row in throughput_rows(parse_size(args.small), args.model, args.device, folder):
            print(row, flush=True)


if __name__ == "__main__":
    main()
