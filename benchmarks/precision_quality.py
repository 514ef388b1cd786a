"""What `--precision auto` costs in quality: the shipped x2 models scored in fp32 and in auto.

Runs `srgrad eval` twice (reports in docs/eval/precision_x2_<precision>.json) and writes
the per-set PSNR/SSIM differences into docs/benchmarks.md. Target: auto within 0.01 dB
Y-PSNR of fp32 on Set5 and Set14.

Usage: python benchmarks/precision_quality.py [--root ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_tables import machine_line, replace_section, section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_DB = 0.01


def evaluate(models: str, datasets: str, root: str, precision: str) -> dict:
    report = REPO / "docs" / "eval" / f"precision_x2_{precision}.json"
    subprocess.run([str(REPO / ".venv/bin/srgrad"), "eval", "--model", models, "--scale", "2",
                    "--datasets", datasets, "--root", root, "--precision", precision,
                    "--report", str(report)], check=True, capture_output=True)
    data = json.loads(report.read_text())
    return {(r["model"], r["dataset"]): (r["psnr"], r["ssim"]) for r in data["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--models", default="sedsr,sedsr-grad")
    parser.add_argument("--datasets", default="set5,set14")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if not Path(args.root, "benchmark").is_dir():
        print(f"skipped: no benchmark sets under {args.root} (pass --root)")
        return
    exact = evaluate(args.models, args.datasets, args.root, "fp32")
    auto = evaluate(args.models, args.datasets, args.root, "auto")
    lines = ["| model | data set | fp32 PSNR / SSIM | auto PSNR / SSIM | auto - fp32 (dB) | "
             f"within {TARGET_DB} dB |", "|---|---|---|---|---|---|"]
    for key, (psnr, ssim) in exact.items():
        p2, s2 = auto[key]
        ok = "yes" if abs(p2 - psnr) <= TARGET_DB else "**no**"
        lines.append(f"| {key[0]} | {key[1]} | {psnr:.4f} / {ssim:.5f} | {p2:.4f} / {s2:.5f} | "
                     f"{p2 - psnr:+.4f} | {ok} |")
    command = "python benchmarks/precision_quality.py " + " ".join(sys.argv[1:])
    text = "\n".join([f"Command: `{command.strip()}` (reports: docs/eval/precision_x2_fp32.json, "
                      f"docs/eval/precision_x2_auto.json). {machine_line()}", "", *lines])
    print(text)
    replace_section(args.write, section("precision-quality"), text)


if __name__ == "__main__":
    main()
