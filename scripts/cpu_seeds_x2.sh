#!/usr/bin/env bash
# Paired seed study at x2 on this CPU: sedsr-grad (shipped setting) vs sedsr, seeds 0-2,
# identical iterations, schedule, patches (seeded sampler); validation on 20 held-out
# training images (holdout:20), never a test set. Two runs at a time, one thread each.
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
run() {  # model seed
  out=runs/seeds/$1_s$2
  [ -f $out/$1_x2.safetensors ] && return
  extra=(); [ -f $out/last.pt ] && extra=(--resume)
  .venv/bin/srgrad train --model $1 --scale 2 --data ../shared/datasets/train --val holdout:20 \
    --iters ${ITERS:-500} --batch 16 --patch 48 --lr 5e-4 --warmup 20 --val-every 250 \
    --log-every 25 --ckpt-every 50 --seed $2 --out $out --device cpu --quiet "${extra[@]}" \
    >> $out.log 2>&1
}
mkdir -p runs/seeds
for seed in 0 1 2; do
  run sedsr-grad $seed & run sedsr $seed & wait
done
