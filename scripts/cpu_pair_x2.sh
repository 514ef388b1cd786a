#!/usr/bin/env bash
# Equal-budget x2 pair on this CPU (issue 7): sedsr-grad with the sweep's setting and sedsr
# (identity), side by side, one thread each: same seed (identical patches), iterations,
# schedule, EMA; validation on 20 held-out training images, never a test set. Resumable:
# rerunning continues each run from its last.pt.
#   GRAD_FLAGS="--norm pixel --magnitude unit --alpha -3" ITERS=10000 scripts/cpu_pair_x2.sh
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
ITERS=${ITERS:-10000}
ROOT=${ROOT:-runs/pair}
SEED=${SEED:-0}
run() {  # name model flags...
  name=$1 model=$2; shift 2
  out=$ROOT/$name
  mkdir -p "$out"
  [ -f "$out/${model}_x2.safetensors" ] && return
  extra=(); [ -f "$out/last.pt" ] && extra=(--resume)
  .venv/bin/srgrad train --model "$model" "$@" --scale 2 --data ../shared/datasets/train \
    --val holdout:20 --iters "$ITERS" --batch 16 --patch 48 --lr 5e-4 --warmup 200 \
    --ema 0.999 --val-every 1000 --log-every 50 --ckpt-every 100 --seed "$SEED" \
    --out "$out" --device cpu --quiet "${extra[@]}" >> "$out.log" 2>&1
}
# shellcheck disable=SC2086
run sedsr-grad_s$SEED sedsr-grad $GRAD_FLAGS &
run sedsr_s$SEED sedsr &
wait
