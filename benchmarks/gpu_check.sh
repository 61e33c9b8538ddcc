#!/usr/bin/env bash
# Paper-scale timings and a longer small-model pretraining on one GPU, in about nine minutes:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. benchmarks/train_speed.py --torch: our training step against its PyTorch twin, same run;
# 2. the small grid preset pretrained 8x longer (24,000 steps, 2 seeds, stopped at 270 s if the
#    GPU is slower than expected: the run is checkpointed, and the control stage takes the latest);
# 3. supervised controllers at L/2 on that model, judged on the post-training task.
# Each part runs even if an earlier one failed; everything lands in OUTDIR.
set -u
out=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}.
work=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"

timeout 150 python3 benchmarks/train_speed.py --torch --steps 3 --repeats 3 --out "$out"
echo "train_speed rc=$?"

timeout 270 python3 experiments/pretrain.py --config=experiments/configs/grid.py:small --workdir="$work/pretrain" \
  --config.seeds=2 --config.train.steps=24000 --config.train.chunk_steps=500 --config.train.eval_every=4000 \
  --noprogress
echo "pretrain rc=$?"
cp "$work"/pretrain/{config.json,metrics.jsonl,results.json} "$out"/ 2>/dev/null
mv "$out"/config.json "$out"/pretrain_config.json 2>/dev/null

timeout 120 python3 experiments/control.py --config=experiments/configs/grid.py:analysis-small \
  --pretrained="$work/pretrain" --workdir="$work/control" \
  --config.control.layers='(2,)' --config.control.steps=1000
echo "control rc=$?"
cp "$work"/control/control.json "$out"/ 2>/dev/null

# the checkpoint, in parts small enough to come back
tar czf "$work/pretrain.tgz" -C "$work" pretrain && split -b 15M "$work/pretrain.tgz" "$out/pretrain.tgz.part-"
ls -la "$out"
