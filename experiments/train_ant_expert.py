"""Train the ant expert with brax's PPO, evaluate it, and export it; resumable.

    python experiments/train_ant_expert.py --preset=gpu --workdir=runs/ant-expert --export=checkpoints/ant-expert

Re-running the same command continues from the last checkpoint (`--max_seconds` stops a run
cleanly after the evaluation that passes it). When training ends the expert is judged on
`--episodes` fresh episodes of the pretraining tasks and of the post-training task with its
mean action; the rates go into `evaluation.json` and, with `--export`, into the exported
expert's `expert.json` beside the command and seed that trained it.
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
from absl import app, flags, logging  # noqa: E402

from irl.experts import ant_expert, ant_ppo  # noqa: E402

PRESET = flags.DEFINE_enum("preset", "cpu", sorted(ant_ppo.PRESETS), "training settings (irl/experts/ant_ppo.py)")
WORKDIR = flags.DEFINE_string("workdir", "runs/ant-expert", "output folder (resumes from it)")
SEED = flags.DEFINE_integer("seed", 0, "random seed")
TIMESTEPS = flags.DEFINE_integer("timesteps", None, "override the preset's environment steps")
MAX_SECONDS = flags.DEFINE_float("max_seconds", None, "stop after the first evaluation past this wall time")
EPISODES = flags.DEFINE_integer("episodes", 512, "evaluation episodes per task set")
EXPORT = flags.DEFINE_string("export", None, "copy the trained expert here, with its evaluation")


def main(_):
    logging.set_verbosity(logging.WARNING)  # brax's trainer logs every evaluation's whole dict at INFO
    if EPISODES.value < 1:
        raise app.UsageError("--episodes must be >= 1")
    overrides = {"seed": SEED.value}
    if TIMESTEPS.value is not None:
        overrides["num_timesteps"] = TIMESTEPS.value
    cfg = ant_ppo.preset(PRESET.value, **overrides)
    workdir = Path(WORKDIR.value)
    start = time.time()
    params, finished = ant_ppo.train(cfg, workdir, max_seconds=MAX_SECONDS.value)
    expert = ant_expert.AntExpert.load(workdir / "latest")
    evaluation = {"steps": expert.meta["steps"], "finished": finished, "train_seconds": round(time.time() - start, 1),
                  "device": str(jax.devices()[0].device_kind),
                  **ant_expert.success_rates(expert, jax.random.key(cfg.seed + 1), EPISODES.value)}
    (workdir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    print(json.dumps(evaluation, indent=2))
    if EXPORT.value:
        command = " ".join(["python experiments/train_ant_expert.py", *sys.argv[1:]])
        meta = dict(expert.meta, preset=PRESET.value, command=command, train_config=cfg.to_dict(),
                    evaluation=evaluation)
        ant_expert.save(EXPORT.value, params, cfg.networks, meta)
        print(f"exported to {EXPORT.value}")


if __name__ == "__main__":
    app.run(main)
