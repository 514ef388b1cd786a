"""Pack the training set for a lent GPU: lossless WebP in devdata/train (git-ignored).

The device tool carries the working tree plus named ignored folders, 64 MiB in all; the
291-image set is 60 MB as PNG and about 40 MB as lossless WebP, with every pixel checked
equal after the round trip. File names keep their stems, so the held-out split
(holdout:N hashes names) is the same as on ../shared/datasets/train.

Usage: python benchmarks/gpu_pack_data.py [--src ../shared/datasets/train] [--dst devdata/train]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def pack(src: Path, dst: Path) -> tuple[int, int]:
    count = size = 0
    for path in sorted(src.rglob("*.png")):
        out = dst / path.relative_to(src).with_suffix(".webp")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im.save(out, "WEBP", lossless=True, quality=100, method=4)
            with Image.open(out) as back:
                if not np.array_equal(np.asarray(im.convert("RGB")),
                                      np.asarray(back.convert("RGB"))):
                    raise SystemExit(f"{path}: the WebP round trip changed pixels")
        count, size = count + 1, size + out.stat().st_size
    return count, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=REPO.parent / "shared/datasets/train")
    parser.add_argument("--dst", type=Path, default=REPO / "devdata/train")
    args = parser.parse_args()
    count, size = pack(args.src, args.dst)
    print(f"{count} images, {size / 2**20:.1f} MiB in {args.dst}")


if __name__ == "__main__":
    main()
