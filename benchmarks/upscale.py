"""`srgrad upscale` end to end: time, where it goes, and peak memory, per precision.

For each image size and precision, the whole file pipeline (read, automatic tiling, model,
stitch, write PNG) runs in a fresh child process through the same library call as the CLI
(srgrad.inference.files.upscale_paths), and reports its wall time, peak resident memory
(ru_maxrss) and a breakdown: decode, model forward (summed over tiles), the rest of
super_resolve (tiling, stitching, conversions) and encode. The table replaces its section of
docs/benchmarks.md (or --write FILE). Shipped weights are used (by default those of
`srgrad upscale`'s default model).

With --against REV, the plain CLI command `srgrad upscale IN -o OUT --force` (each
revision's own defaults: model, precision, tiling, PNG level) also runs end to end as a user
runs it, the git revision REV and this working tree alternating round by round, and the
table gives the median seconds of each and their ratio: "no slower than before" measured on
the same machine in the same minutes.

Usage: python benchmarks/upscale.py [--sizes 1920x1920,4000x3000] [--precisions fp32,auto]
                                    [--against REV --rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_tables import machine_line, replace_section, section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "srgrad" / "assets" / "sample.png"
TARGETS = {"1920x1920": 8.0, "4000x3000": 30.0}  # seconds, x2, auto on a native-bf16 CPU
TARGET_RSS_GB = 2.5


def test_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The bundled photo stretched to size, plus grain (so PNG sizes are realistic)."""
    base = Image.open(SAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 4, (height, width, 3))
    return np.clip(np.asarray(base) + noise, 0, 255).astype(np.uint8)


class StageClock:
    """Wraps the pipeline's stages (decode, model forward, encode) to sum their seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner, name: str, stage: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)


def child(source: str, output: str, model: str, precision: str) -> None:
    """In a fresh process: the file pipeline with its stages clocked, as one JSON line."""
    from srgrad.inference import files, forward

    clock = StageClock()
    clock.wrap(files, "read_image", "decode")
    clock.wrap(files, "super_resolve", "super_resolve")
    clock.wrap(forward, "_forward", "model")
    clock.wrap(files, "write_image", "encode")
    tiles = [1]
    start = time.perf_counter()
    report = files.upscale_paths(
        [Path(source)], out=Path(output), model=model, device="cpu", precision=precision,
        force=True, on_tile=lambda done, total: tiles.append(total))
    seconds = time.perf_counter() - start
    assert report.failed == 0, [o.message for o in report.outcomes]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_gb": peak_kb * 1024 / 1e9,
                      "tiles": tiles[-1], "stages": clock.seconds,
                      "output_mb": Path(output).stat().st_size / 1e6}))


def run_child(source: Path, output: Path, model: str, precision: str) -> dict:
    command = [sys.executable, __file__, "--child", str(source), str(output), model, precision]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_file(size: str, folder: Path) -> Path:
    width, height = (int(v) for v in size.lower().split("x"))
    source = folder / f"in_{size}.png"
    if not source.exists():
        Image.fromarray(test_image(width, height)).save(source, compress_level=1)
    return source


def row(size: str, precision: str, model: str, folder: Path) -> str:
    import torch

    from srgrad.models.precision import resolve_precision

    source = test_file(size, folder)
    result = run_child(source, folder / f"out_{size}_{precision}.png", model, precision)
    stages = result["stages"]
    other = stages["super_resolve"] - stages["model"]
    resolved = resolve_precision(precision, torch.device("cpu"))
    target = TARGETS.get(size)
    # The time targets are for auto on a native-bf16 CPU; where auto is fp32 they do not apply.
    applies = target is not None and precision == "auto" and resolved != "fp32"
    verdict = "-" if not applies else (
        "yes" if result["seconds"] <= target else "**no**")
    rss_ok = "yes" if result["peak_rss_gb"] <= TARGET_RSS_GB else "**no**"
    return (f"| {size} | {precision} ({resolved}) | {result['tiles']} | {result['seconds']:.1f} | "
            f"{stages['decode']:.2f} | {stages['model']:.1f} | {other:.2f} | "
            f"{stages['encode']:.2f} | {result['output_mb']:.1f} | {result['peak_rss_gb']:.2f} "
            f"({rss_ok}) | {f'{target} s: {verdict}' if applies else '-'} |")


def checkout(rev: str, folder: Path) -> Path:
    """The tree of git revision `rev` (code and its own shipped weights) under folder."""
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def cli_seconds(code: Path, source: Path, output: Path) -> float:
    """Wall time of `srgrad upscale` run from the package tree `code`, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "srgrad", "upscale", str(source), "-o", str(output),
               "--force"]
    start = time.perf_counter()
    subprocess.run(command, cwd=code, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def against(rev: str, sizes: list[str], rounds: int, folder: Path) -> list[str]:
    before = checkout(rev, folder / "before")
    lines = [f"`srgrad upscale IN -o OUT --force` end to end (process start to exit; each "
             f"revision's own default model, precision and tiling), median of {rounds} "
             f"alternating rounds:", "",
             f"| input (x2) | {rev} (s) | this tree (s) | this tree / {rev} |", "|---|---|---|---|"]
    for size in sizes:
        source = test_file(size, folder)
        times: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(rounds):
            times["before"].append(cli_seconds(before, source, folder / "before.png"))
            times["now"].append(cli_seconds(REPO, source, folder / "now.png"))
        then, now = (statistics.median(times[k]) for k in ("before", "now"))
        lines.append(f"| {size} | {then:.1f} | {now:.1f} | {now / then:.2f}x |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1920x1920,4000x3000")
    parser.add_argument("--precisions", default="fp32,auto")
    parser.add_argument("--model", default=None, help="default: srgrad upscale's default model")
    parser.add_argument("--write", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--against", metavar="REV",
                        help="also time the plain CLI of this git revision against this tree")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --against")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.model is None:
        from srgrad.inference.loading import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    lines = ["| input (x2) | precision | tiles | seconds end to end | decode | model | "
             "tiling + stitch | encode (PNG level 1) | output MB | peak RSS GB (<= 2.5) | "
             "target (auto) |", "|" + "---|" * 11]
    with tempfile.TemporaryDirectory(prefix="srgrad-bench-") as tmp:
        for size in args.sizes.split(","):
            for precision in args.precisions.split(","):
                lines.append(row(size, precision, args.model, Path(tmp)))
                print(lines[-1], flush=True)
        if args.against:
            lines += ["", *against(args.against, args.sizes.split(","), args.rounds, Path(tmp))]
    command = "python benchmarks/upscale.py " + " ".join(sys.argv[1:])
    text = "\n".join([f"Command: `{command.strip()}` ({args.model}, shipped weights). "
                      f"{machine_line()}", "", *lines])
    replace_section(args.write, section("upscale"), text)


if __name__ == "__main__":
    main()
