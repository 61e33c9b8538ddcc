"""How much the ant expert's sampled torques (the pretraining data) say about the colour sought:
the information per step, against their entropy (irl/analysis/subgoal_signal.py).

    python experiments/ant_subgoal_signal.py --out=docs/results/ant-subgoal-signal.json [--episodes=64]

Measured on the shipped expert (or --expert), on the pretraining tasks and on the post-training
task; prints and writes one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

import irl.envs  # noqa: E402
from irl.analysis.subgoal_signal import measure  # noqa: E402
from irl.experts.ant_expert import SHIPPED, AntExpert  # noqa: E402

EXPERT = flags.DEFINE_string("expert", str(SHIPPED), "expert directory")
EPISODES = flags.DEFINE_integer("episodes", 64, "episodes per task set")
SAMPLES = flags.DEFINE_integer("samples", 16, "torque samples per colour and step (Monte Carlo)")
SEED = flags.DEFINE_integer("seed", 0, "random seed")
OUT = flags.DEFINE_string("out", "runs/ant-subgoal-signal.json", "JSON to write")


def main(_):
    if EPISODES.value < 1 or SAMPLES.value < 1:
        raise ValueError(f"--episodes and --samples must be >= 1, got {EPISODES.value}, {SAMPLES.value}")
    expert = AntExpert.load(EXPERT.value)
    out = {"expert": EXPERT.value, "command": " ".join(sys.argv)}
    for tasks in ("pretrain", "post"):
        world, world_params = irl.envs.make("ant_pinpad", tasks=tasks)
        start = time.perf_counter()
        out[tasks] = measure(expert, world, world_params, jax.random.key(SEED.value), EPISODES.value, SAMPLES.value)
        out[tasks]["seconds"] = round(time.perf_counter() - start, 1)
    Path(OUT.value).parent.mkdir(parents=True, exist_ok=True)
    Path(OUT.value).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
