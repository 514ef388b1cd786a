#!/usr/bin/env bash
# x3 and x4 from given x2 weights on this CPU, side by side, one thread each (issue 7).
# Validation on 20 held-out training images (never a test set). Rerun to resume.
#   INIT=runs/pair/sedsr-grad_s0/sedsr-grad_x2.safetensors ITERS3=4000 ITERS4=2600 \
#     scripts/cpu_x34_from.sh
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
MODEL=${MODEL:-sedsr-grad}
ROOT=${ROOT:-runs/x34}
: "${INIT:?set INIT to the x2 weights to start from}"
run() {  # scale iters
  out=$ROOT/${MODEL}_x$1
  args=(--model "$MODEL" --scale "$1" --data ../shared/datasets/train --val holdout:20
        --iters "$2" --batch 16 --patch 48 --lr 2e-4 --schedule cosine --warmup 30
        --ema 0.999 --val-every 500 --ckpt-every 50 --log-every 25 --seed 0 --out "$out"
        --device cpu --workers 1 --quiet)
  mkdir -p "$ROOT"
  if [ -f "$out/last.pt" ]; then
    [ -f "$out/${MODEL}_x$1.safetensors" ] && return
    .venv/bin/srgrad train "${args[@]}" --resume >> "$out.log" 2>&1
  else
    .venv/bin/srgrad train "${args[@]}" --init-from "$INIT" > "$out.log" 2>&1
  fi
}
run 3 "${ITERS3:-4000}" &
run 4 "${ITERS4:-2600}" &
wait
