#!/usr/bin/env bash
# Train the ant expert on one GPU inside a time budget, judge it and export it:
#   bash benchmarks/ant_expert_gpu.sh OUTDIR [TRAIN_SECONDS [FLAGS...]]
# FLAGS go to experiments/train_ant_expert.py after --preset=gpu, e.g. to fine-tune the shipped one:
#   bash benchmarks/ant_expert_gpu.sh OUTDIR 400 --preset=gpu-finetune --init_from=checkpoints/ant-expert
# The run is checkpointed after every evaluation; rerunning with the same OUTDIR resumes it.
# OUTDIR/run: train_config.json, metrics.jsonl, evaluation.json, latest/ (the last checkpoint);
# OUTDIR/expert: the exported expert (params.msgpack, expert.json with command, seed and rates).
set -u
out=${1:?usage: ant_expert_gpu.sh OUTDIR [TRAIN_SECONDS]}
seconds=${2:-400}
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, brax, mujoco; from mujoco import mjx; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)" || exit 1
python3 experiments/train_ant_expert.py --preset=gpu --workdir="$out/run" --max_seconds="$seconds" --episodes=512 \
  --export="$out/expert" "${@:3}"
echo "train rc=$?"
ls -la "$out" "$out"/*
