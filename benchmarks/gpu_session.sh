#!/usr/bin/env bash
# The one command for a lent GPU (device tool `run`, carry: ["devdata"], timeout_s 600):
#   bash benchmarks/gpu_session.sh
# The device's python3 already holds torch, typer, rich, tqdm, safetensors, scikit-image and
# pillow (/work/.library/device/KINDS.md) and reaches no index, so srgrad is installed
# editable without dependencies or network.
# 1. block timings on CUDA, 2. the edsr-baseline study (about 7 minutes), results to $OUT as
# one archive (the device returns at most 8 files). Prepare here first:
#   python benchmarks/gpu_pack_data.py     # devdata/train, ~40 MiB, carried
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
cp docs/benchmarks.md "$OUT/benchmarks.md"
timeout 120 python3 benchmarks/blocks.py --device cuda --rounds 20 --write "$OUT/benchmarks.md" \
  --families sedsr,edsr-baseline || true
python3 -m srgrad study recipes/gpu-edsr-baseline-x2.toml --root "$OUT/runs" --jobs 3 \
  --report "$OUT/study.md" || true
tar -czf "$OUT/runs.tgz" --exclude='*.pt' -C "$OUT" runs && rm -rf "$OUT/runs"
ls -la "$OUT"
