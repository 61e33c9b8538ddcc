"""Supervised residual-stream controllers at every layer, every seed, judged on the
post-training task (never seen in pretraining) with codes switched by the true progress.

    python experiments/control.py --pretrained=runs/grid-small/pretrain --workdir=runs/grid-small/control \
        --config=experiments/configs/grid.py:analysis-small

Writes `control.json` (success by controlled layer, per seed and mean; per-subgoal completion
rate, the reliability that bounds a six-subgoal chain), `control_success_by_layer.png` and a
rendered post-training episode at the best layer, `controlled_episode.png`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import irl.envs as envs  # noqa: E402
from irl.analysis.supervised_control import N_SUBGOALS, run_controlled, train_controllers  # noqa: E402
from irl.control.linear import ControllerConfig  # noqa: E402
from irl.data import make_expert_data  # noqa: E402
from irl.figures import plot_curves  # noqa: E402
from irl.pretraining import load_pretrained  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:analysis-small", "analysis config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/control", "output folder")


def subgoal_completion(progress: np.ndarray, success: np.ndarray, n_subgoals: int) -> float:
    """Completed subgoals / attempted subgoals over episodes (an attempt that failed counts)."""
    completed = np.minimum(progress // 2, n_subgoals)
    attempted = completed + (~success).astype(int)
    return float(completed.sum() / max(attempted.sum(), 1))


def control(config, pretrained: str | Path, workdir: str | Path) -> dict:
    cfg = config.control
    if cfg.steps < 1 or cfg.batch < 1 or cfg.eval_episodes < 1:
        raise ValueError(f"control.steps, control.batch and control.eval_episodes must be >= 1, got {cfg}")
    trainer, params = load_pretrained(pretrained)
    model, env = trainer.model, trainer.env
    layers = list(cfg.layers) or list(range(model.n_layers + 1))
    if any(not 0 <= layer <= model.n_layers for layer in layers):
        raise ValueError(f"control.layers must lie in 0..{model.n_layers}, got {layers}")
    ctrl_cfg = ControllerConfig(width=model.width, code_dim=N_SUBGOALS, rank=cfg.rank, hidden=cfg.hidden)
    episodes = make_expert_data(env, trainer.env_params, cfg.batch, trainer.config.data.eps)
    _, post_params = envs.make(trainer.config.env, tasks="post")
    n_post_subgoals = int(post_params.task_lens[0]) // 2
    seeds = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(jax.random.key(config.seed), seeds)

    per_layer = []
    for layer in layers:
        @jax.jit
        def one_seed(base_params, key, layer=layer):
            train_key, eval_key = jax.random.split(key)
            ctrl, history = train_controllers(model, base_params, episodes, train_key, layer, cfg.steps, ctrl_cfg,
                                              cfg.lr, cfg.weight_decay)
            result = run_controlled(model, base_params, ctrl, ctrl_cfg, layer, env, post_params, eval_key,
                                    cfg.eval_episodes)
            return result, history["accuracy"][-1]

        result, train_accuracy = jax.device_get(jax.vmap(one_seed)(params, keys))
        success = np.asarray(result.success)
        per_layer.append({
            "layer": layer,
            "success_by_seed": success.mean(1).tolist(),
            "success": float(success.mean()),
            "subgoal_completion": subgoal_completion(np.asarray(result.progress), success, n_post_subgoals),
            "train_action_accuracy": float(np.mean(train_accuracy)),
        })
        logging.warning("layer %d: post-task success %.3f", layer, per_layer[-1]["success"])
    best = max(per_layer, key=lambda r: r["success"])
    summary = {
        "controlled_layers": layers,
        "success_by_layer": [r["success"] for r in per_layer],
        "subgoal_completion_by_layer": [r["subgoal_completion"] for r in per_layer],
        "by_layer": per_layer,
        "best_layer": best["layer"],
        "mid_layer": model.n_layers // 2,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "rank": cfg.rank,
    }
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "control.json").write_text(json.dumps(summary, indent=2))
    plot_curves(workdir / "control_success_by_layer.png", layers,
                {"post-task success": summary["success_by_layer"],
                 "per-subgoal completion": summary["subgoal_completion_by_layer"]},
                xlabel="controlled layer l", ylabel="rate",
                title="Supervised controllers, post-training task (unseen)")
    return summary


def main(_):
    logging.set_verbosity(logging.WARNING)
    summary = control(CONFIG.value, PRETRAINED.value, WORKDIR.value)
    print(json.dumps({k: summary[k] for k in ("success_by_layer", "subgoal_completion_by_layer", "best_layer")}, indent=2))


if __name__ == "__main__":
    app.run(main)
