#!/usr/bin/env bash
# x3 and x4 sedsr-grad (and sedsr) from the shipped x2 weights, on this CPU, one thread
# (several jobs share the 2 cores; two threads per job thrash). Rerun to resume.
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
for model in ${MODELS:-sedsr-grad}; do
  for s in 3 4; do
    out=runs/${model}_x$s
    args=(--model $model --scale $s --data ../shared/datasets/train --val set5
          --val-root ../shared/datasets --iters ${ITERS:-800} --batch 16 --patch 48 --lr 2e-4
          --schedule cosine --warmup 30 --ema 0.999 --val-every 200 --ckpt-every 50
          --log-every 25 --out $out --device cpu --workers 2 --quiet)
    if [ -f $out/last.pt ]; then
      [ -f $out/${model}_x$s.safetensors ] && continue
      .venv/bin/srgrad train "${args[@]}" --resume >> $out.log 2>&1
    else
      .venv/bin/srgrad train "${args[@]}" --init-from weights/${model}_x2.safetensors > $out.log 2>&1
    fi
  done
done
