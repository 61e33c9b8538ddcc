"""Train the ant expert with brax's PPO, evaluate it, and export it; resumable.

    python experiments/train_ant_expert.py --preset=gpu --workdir=runs/ant-expert --export=checkpoints/ant-expert

Writes `metrics.jsonl` (one line per evaluation), `learning_curve.png` and a few drawn
episodes `episode_<tasks>_<i>.png` to the workdir.
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

import irl.envs  # noqa: E402
from irl.envs.render import render_ant, save_png  # noqa: E402
from irl.experts import ant_expert, ant_ppo  # noqa: E402
from irl.figures import plot_curves  # noqa: E402

PRESET = flags.DEFINE_enum("preset", "cpu", sorted(ant_ppo.PRESETS), "training settings (irl/experts/ant_ppo.py)")
WORKDIR = flags.DEFINE_string("workdir", "runs/ant-expert", "output folder (resumes from it)")
SEED = flags.DEFINE_integer("seed", 0, "random seed")
TIMESTEPS = flags.DEFINE_integer("timesteps", None, "override the preset's environment steps")
REWARD = flags.DEFINE_enum("reward", None, ant_ppo.REWARDS, "override the preset's training reward")
FAILURE_PENALTY = flags.DEFINE_float("failure_penalty", None, "override the preset's failure penalty")
SPEED_CAP = flags.DEFINE_float("speed_cap", None, "override the preset's speed cap (m/s; 0: none)")
DISCOUNTING = flags.DEFINE_float("discounting", None, "override the preset's discount factor")
ENTROPY_COST = flags.DEFINE_float("entropy_cost", None, "override the preset's entropy cost")
INIT_FROM = flags.DEFINE_string("init_from", "", "start from this exported expert's weights (e.g. to fine-tune)")
MAX_SECONDS = flags.DEFINE_float("max_seconds", None, "stop after the first evaluation past this wall time")
EPISODES = flags.DEFINE_integer("episodes", 512, "evaluation episodes per task set")
EXPORT = flags.DEFINE_string("export", None, "copy the trained expert here, with its evaluation")
EVALUATE = flags.DEFINE_string("evaluate", None, "judge this expert directory instead of training "
                               "(evaluation.json and episode drawings go to the workdir)")


def plot_learning_curve(workdir: Path) -> None:
    """learning_curve.png: the training evaluations' success and failure rates against steps."""
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "eval/episode_success" in r]
    plot_curves(workdir / "learning_curve.png", [r["steps"] / 1e6 for r in rows],
                {name: [r[f"eval/episode_{name}"] for r in rows] for name in ("success", "failure")},
                xlabel="environment steps (millions)", ylabel="rate (mean action, pretraining tasks)",
                title="ant expert: brax PPO on AntPinpad")


def draw_episodes(expert: ant_expert.AntExpert, workdir: Path, key: jax.Array, n: int = 4) -> None:
    """episode_<tasks>_<i>.png: the first n episodes (mean action) seen from above."""
    for tasks in ("pretrain", "post"):
        world, world_params = irl.envs.make("ant_pinpad", tasks=tasks)
        episodes = jax.device_get(ant_expert.run_episodes(expert, world, world_params, key, n, deterministic=True))
        for i in range(n):
            final = jax.tree.map(lambda x: x[i], episodes.final)
            save_png(render_ant(final, episodes.xy[i, : episodes.length[i] + 1]), workdir / f"episode_{tasks}_{i}.png")


def evaluate(expert: ant_expert.AntExpert, workdir: Path, seed: int, extra: dict) -> dict:
    """Judge the expert, write evaluation.json and the episode drawings; returns the evaluation."""
    workdir.mkdir(parents=True, exist_ok=True)
    evaluation = {"steps": expert.meta["steps"], **extra, "device": str(jax.devices()[0].device_kind),
                  **ant_expert.success_rates(expert, jax.random.key(seed + 1), EPISODES.value)}
    (workdir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    draw_episodes(expert, workdir, jax.random.key(seed + 2))
    print(json.dumps(evaluation, indent=2))
    return evaluation


def main(_):
    logging.set_verbosity(logging.WARNING)  # brax's trainer logs every evaluation's whole dict at INFO
    if EPISODES.value < 1:
        raise app.UsageError("--episodes must be >= 1")
    if EVALUATE.value:
        evaluate(ant_expert.AntExpert.load(EVALUATE.value), Path(WORKDIR.value), SEED.value, {"expert": EVALUATE.value})
        return
    overrides = {"seed": SEED.value}
    for name, flag in (("num_timesteps", TIMESTEPS), ("reward", REWARD), ("failure_penalty", FAILURE_PENALTY),
                       ("speed_cap", SPEED_CAP), ("discounting", DISCOUNTING), ("entropy_cost", ENTROPY_COST)):
        if flag.value is not None:
            overrides[name] = flag.value
    if INIT_FROM.value:
        overrides["init_from"] = INIT_FROM.value
    cfg = ant_ppo.preset(PRESET.value, **overrides)
    workdir = Path(WORKDIR.value)
    start = time.time()
    # the expert it starts from, read before an export may overwrite it
    base = ant_expert.AntExpert.load(cfg.init_from).meta if cfg.init_from else {}
    history, base_steps = base.get("history", []), int(base.get("total_steps", base.get("steps", 0)))
    params, finished = ant_ppo.train(cfg, workdir, max_seconds=MAX_SECONDS.value)
    plot_learning_curve(workdir)
    expert = ant_expert.AntExpert.load(workdir / "latest")
    evaluation = evaluate(expert, workdir, cfg.seed, {"finished": finished,
                                                      "train_seconds": round(time.time() - start, 1)})
    if EXPORT.value:
        command = " ".join(["python experiments/train_ant_expert.py", *sys.argv[1:]])
        history = [*history, {"steps": expert.meta["steps"], "device": evaluation["device"], "command": command,
                              "preset": PRESET.value, "success_pretrain": evaluation["success_pretrain"]}]
        meta = dict(expert.meta, preset=PRESET.value, command=command, train_config=cfg.to_dict(),
                    evaluation=evaluation, history=history, total_steps=base_steps + expert.meta["steps"])
        ant_expert.save(EXPORT.value, params, cfg.networks, meta)
        print(f"exported to {EXPORT.value}")


if __name__ == "__main__":
    app.run(main)
