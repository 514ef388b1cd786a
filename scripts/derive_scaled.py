"""Derive `<family>-scaled` weights from `<family>-grad` weights: the same tensors, g := 0.

`srgrad ablate` shows the shipped sedsr-grad networks score the same with g := 0 (to 0.001
dB, docs/results.md section 3). Their g := 0 form is a network with skip (1 - s) x and no
gradient term: same outputs to that precision, at the identity block's cost. This writes it
with alpha frozen (a buffer) and a card that records where it came from.

Usage: python scripts/derive_scaled.py weights/sedsr-grad_x2.safetensors [...] --out weights
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from srgrad.models.registry import build
from srgrad.models.weights import load_weights, read_metadata, save_weights


def derive(source: Path, out_dir: Path, command: str) -> Path:
    model, config = load_weights(source)
    block = replace(config.block, skip="scaled", learn_alpha=False)
    name = config.name.replace("-grad", "-scaled")
    scaled_config = replace(config, name=name, block=block)
    scaled = build(scaled_config)
    scaled.load_state_dict(model.state_dict())
    card = dict(read_metadata(source).get("card") or {})
    card.update(model=name, block=block.__dict__, derived_from=source.name,
                derivation="the same tensors with g := 0: skip (1 - s) x, alpha frozen",
                derive_command=command)
    return save_weights(scaled, scaled_config, out_dir / f"{name}_x{config.scale}.safetensors",
                        card=card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("weights"))
    args = parser.parse_args()
    command = shlex.join(["python", "scripts/derive_scaled.py", *sys.argv[1:]])
    for source in args.sources:
        print(derive(source, args.out, command))


if __name__ == "__main__":
    main()
