export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
for m in sedsr-grad sedsr; do
python3 -m srgrad train --model $m --scale 2 --data devdata/train --val set5 --val-root devdata --iters 100000 --batch 32 --patch 48 --lr 4e-4 --schedule step --step-every 1000000 --warmup 300 --ema 0.999 --out /tmp/r/$m --device cuda --cache-dir /tmp/c --val-every 2000 --log-every 100 --quiet --time-limit 150 > /tmp/$m.log 2>&1 &
done
wait; mkdir -p $OUT/r; for m in sedsr-grad sedsr; do cp /tmp/r/$m/${m}_x2.safetensors /tmp/r/$m/metrics.csv /tmp/r/$m/model_card.json $OUT/r/ 2>/dev/null; cp /tmp/r/$m/metrics.csv $OUT/r/$m.csv; cp /tmp/r/$m/model_card.json $OUT/r/$m.json; tail -2 /tmp/$m.log; done
