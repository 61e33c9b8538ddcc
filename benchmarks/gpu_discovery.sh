#!/usr/bin/env bash
# Does a larger base model change what discovery's codes name? On one GPU, within ten minutes
# (its two commands stop at 270 s and 300 s):
#   bash benchmarks/gpu_discovery.sh OUTDIR [ENCODER] [STEPS] [ROWS]
# 1. pretrains the paper's 6 x 256 transformer (SPEC.md section 4) on ROWS packed rows per step
#    (default 512, about 2,560 episodes; the small preset's 64 are what a CPU affords), its
#    learning-rate schedule shortened to STEPS (default 2,000), with the observation encoder
#    ENCODER (agent_relative, the preset's, by default; linear is the paper's). From the step
#    times measured on an H200 (benchmarks/results/train_speed_gpu.md: the expert's data take
#    about 0.04 s a step at any of these batches, the paper-size model 0.45 us per token),
#    2,000 steps of 512 rows take about 160 s there: 5 million episodes, 5 times what 3,000 steps
#    of 64 rows gave and 6 times the CPU's 2,500-step run. It stops at 270 s if the GPU is slower
#    (the run is checkpointed, and discovery takes the latest checkpoint);
# 2. trains the metacontroller alone at alphas 0.03-0.17 on it and measures what its codes name
#    (code readout, the prior's codes on the post task, the code oracle): on the small CPU
#    model every variant tried names a heading, not the subgoal (docs/grid.md).
# Environment: PRETRAIN_FLAGS and DISCOVER_FLAGS are appended to the two commands (e.g. a CPU
# smoke test's shorter settings); PRETRAIN_SECONDS and DISCOVER_SECONDS replace their limits;
# WORK keeps the checkpoints in that folder instead of a temporary one. OUTDIR receives
# pretrain_results.json, metrics.jsonl, discovery.json, its figures and the logs.
# A smoke test on a CPU (about 3.5 minutes on 2 cores; checks that both commands run end to end):
#   PRETRAIN_FLAGS="--config.train.steps=10 --config.train.chunk_steps=10 --config.train.eval_every=10
#     --config.data.batch=8 --config.eval.episodes=8" DISCOVER_FLAGS="--config.train.steps=4
#     --config.train.chunk_steps=4 --config.train.eval_every=4 --config.train.kl_free_steps=0
#     --config.train.kl_warmup_steps=0 --config.optim.warmup_steps=1 --config.eval.episodes=8
#     --config.eval.progress_episodes=8 --config.eval.prior_episodes=8 --config.eval.code_oracle.steps=2
#     --config.eval.code_oracle.episodes=8" bash benchmarks/gpu_discovery.sh OUTDIR agent_relative 10 8
set -u
out=${1:?usage: gpu_discovery.sh OUTDIR [ENCODER] [STEPS] [ROWS]}
encoder=${2:-agent_relative}
steps=${3:-2000}
rows=${4:-512}
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}.
work=${WORK:-$(mktemp -d)}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

# shellcheck disable=SC2086  # PRETRAIN_FLAGS and DISCOVER_FLAGS are lists of flags
timeout "${PRETRAIN_SECONDS:-270}" python3 experiments/pretrain.py --config=experiments/configs/grid.py:small --workdir="$work/pretrain" \
  --config.model.n_layers=6 --config.model.width=256 --config.model.head_dim=64 --config.model.mlp_width=512 \
  --config.model.encoder="$encoder" --config.data.batch="$rows" --config.train.steps="$steps" --config.train.chunk_steps=100 \
  --config.train.eval_every="$steps" --config.optim.warmup_steps=$((steps < 2000 ? steps / 10 : 200)) \
  --noprogress ${PRETRAIN_FLAGS:-} 2>&1 | tee "$out/pretrain.log" | grep -v "^W\|warp"
echo "pretrain rc=${PIPESTATUS[0]}"
cp "$work"/pretrain/metrics.jsonl "$out"/ 2>/dev/null
cp "$work"/pretrain/results.json "$out"/pretrain_results.json 2>/dev/null

timeout "${DISCOVER_SECONDS:-300}" python3 experiments/discover.py --config=experiments/configs/grid.py:discover-small \
  --pretrained="$work/pretrain" --workdir="$work/discover" --config.methods='("metacontroller",)' \
  --config.alphas='(0.03,0.05,0.1,0.17)' ${DISCOVER_FLAGS:-} 2>&1 | tee "$out/discover.log" | grep -v "^W\|warp" | tail -20
echo "discover rc=${PIPESTATUS[0]}"
cp "$work"/discover/discovery.json "$work"/discover/*.png "$out"/ 2>/dev/null
ls -la "$out"
