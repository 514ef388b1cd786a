#!/usr/bin/env bash
# Continue the shipped sedsr-grad x3/x4 fine-tunes (same-scale --init-from keeps every
# tensor) for more iterations on this CPU, one thread per run, both runs side by side.
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
for s in 3 4; do
  out=runs/sedsr-grad_x${s}_more
  args=(--model sedsr-grad --scale $s --data ../shared/datasets/train --val set5
        --val-root ../shared/datasets --iters ${ITERS:-1500} --batch 16 --patch 48 --lr 1e-4
        --schedule cosine --warmup 20 --ema 0.999 --val-every 500 --ckpt-every 50
        --log-every 25 --out $out --device cpu --workers 1 --quiet)
  if [ -f $out/last.pt ]; then
    .venv/bin/srgrad train "${args[@]}" --resume >> $out.log 2>&1 &
  else
    .venv/bin/srgrad train "${args[@]}" --init-from weights/sedsr-grad_x$s.safetensors > $out.log 2>&1 &
  fi
done
wait
