"""Generate GridPinpad expert episodes and report what they look like.

    python experiments/expert_data.py --episodes 10240 --workdir runs/expert-data

Writes to the workdir: `expert_data.json` (success rate and episode-length distribution for
the pretraining tasks and the post-training task, generation speed), `episode_lengths.png`
(histograms) and a few rendered episodes `episode_<tasks>_<i>.png`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import irl.envs as envs  # noqa: E402
from irl.data import make_expert_data  # noqa: E402
from irl.envs.render import render_episode, save_png  # noqa: E402

EPISODES = flags.DEFINE_integer("episodes", 10_240, "episodes per task set")
BATCH = flags.DEFINE_integer("batch", 1024, "episodes per generated batch")
EPS = flags.DEFINE_float("eps", 0.0, "probability of a random safe action")
SEED = flags.DEFINE_integer("seed", 0, "random seed")
RENDER = flags.DEFINE_integer("render", 3, "episodes to draw per task set")
WORKDIR = flags.DEFINE_string("workdir", "runs/expert-data", "output folder")


def summarise(lengths: np.ndarray, success: np.ndarray) -> dict:
    return {
        "episodes": int(lengths.size),
        "success_rate": float(success.mean()),
        "length_mean": float(lengths.mean()),
        "length_std": float(lengths.std()),
        "length_percentiles": {str(q): float(np.percentile(lengths, q)) for q in (0, 5, 25, 50, 75, 95, 100)},
    }


def main(_):
    if EPISODES.value < 1 or BATCH.value < 1:
        raise app.UsageError("--episodes and --batch must be >= 1")
    workdir = Path(WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    report, histograms = {"eps": EPS.value, "seed": SEED.value}, {}
    for tasks in ("pretrain", "post"):
        env, params = envs.make("grid_pinpad", tasks=tasks)
        generate = make_expert_data(env, params, BATCH.value, eps=EPS.value)
        keys = jax.random.split(jax.random.fold_in(jax.random.key(SEED.value), tasks == "post"), -(-EPISODES.value // BATCH.value))
        jax.block_until_ready(generate(keys[0]))  # compile outside the timing
        start, lengths, success, transitions = time.perf_counter(), [], [], 0
        for key in keys:
            batch = jax.device_get(generate(key))
            lengths.append(batch.length)
            success.append(batch.success)
            transitions += int(batch.mask.sum())
        seconds = time.perf_counter() - start
        lengths = np.concatenate(lengths)[: EPISODES.value]
        success = np.concatenate(success)[: EPISODES.value]
        report[tasks] = summarise(lengths, success) | {"transitions_per_s": transitions / seconds}
        histograms[tasks] = lengths
        print(f"{tasks:8s}: success {success.mean():.4f} over {lengths.size} episodes, length "
              f"{lengths.mean():.1f} +- {lengths.std():.1f} (min {lengths.min()}, max {lengths.max()}), "
              f"{transitions / seconds:,.0f} transitions/s")
        for i in range(min(RENDER.value, BATCH.value)):
            title = f"{tasks} task {int(batch.task_id[i])}, eps {EPS.value}"
            save_png(render_episode(batch.obs[i], batch.length[i], title=title), workdir / f"episode_{tasks}_{i}.png")

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, (tasks, lengths) in zip(axes, histograms.items()):
        axis.hist(lengths, bins=np.arange(lengths.min(), lengths.max() + 2) - 0.5, color="tab:blue")
        axis.set_title(f"{tasks} tasks: {lengths.mean():.1f} +- {lengths.std():.1f} steps")
        axis.set_xlabel("episode length (steps)")
    axes[0].set_ylabel("episodes")
    figure.tight_layout()
    figure.savefig(workdir / "episode_lengths.png", dpi=110)
    (workdir / "expert_data.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {workdir}/expert_data.json, episode_lengths.png and rendered episodes")


if __name__ == "__main__":
    app.run(main)
