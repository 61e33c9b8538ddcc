"""Supervised-controller stage: controllers at every layer, judged on the post-training task."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from absl import logging

import irl.envs as envs
from irl.analysis.failures import CAUSES, failure_causes
from irl.analysis.supervised_control import N_SUBGOALS, run_controlled, train_controllers
from irl.control.linear import ControllerConfig
from irl.envs.render import render_recorded, save_png
from irl.figures import plot_curves
from irl.pretraining import load_pretrained


def subgoal_completion(progress: np.ndarray, success: np.ndarray, n_subgoals: int, colors_per_subgoal: int = 2) -> float:
    """Completed subgoals / attempted subgoals over episodes (an attempt that failed counts)."""
    completed = np.minimum(progress // colors_per_subgoal, n_subgoals)
    attempted = completed + (~success).astype(int)
    return float(completed.sum() / max(attempted.sum(), 1))


def render_solved_episode(path, model, params, controllers, ctrl_cfg, layer, env, post_params, action_space,
                          tries: int = 64):
    """Draw the first post-task episode of seed 0 that the controllers solve (or the longest)."""
    first = lambda tree: jax.tree.map(lambda x: x[0], tree)
    run = jax.jit(lambda key: run_controlled(model, first(params), first(controllers), ctrl_cfg, layer, env,
                                             post_params, key, tries, record=True, action_space=action_space))
    episodes = jax.device_get(run(jax.random.key(7)))
    solved = np.flatnonzero(episodes.success)
    i = int(solved[0]) if solved.size else int(np.argmax(episodes.progress))
    title = f"layer {layer} controllers, post task: {'solved' if episodes.success[i] else 'not solved'}"
    save_png(render_recorded(episodes, i, title=title), path)


def control(config, pretrained: str | Path, workdir: str | Path) -> dict:
    cfg = config.control
    if cfg.steps < 1 or cfg.batch < 1 or cfg.eval_episodes < 1:
        raise ValueError(f"control.steps, control.batch and control.eval_episodes must be >= 1, got {cfg}")
    trainer, params = load_pretrained(pretrained)
    model, env, action_space = trainer.model, trainer.env, trainer.action_space
    layers = list(cfg.layers) or list(range(model.n_layers + 1))
    if any(not 0 <= layer <= model.n_layers for layer in layers):
        raise ValueError(f"control.layers must lie in 0..{model.n_layers}, got {layers}")
    ctrl_cfg = ControllerConfig(width=model.width, code_dim=N_SUBGOALS, rank=cfg.rank, hidden=cfg.hidden)
    # training rows as in pretraining: episodes no longer than its, packed where it packs
    tokens = trainer.token_batches(cfg.batch, trainer.config.data.max_episode_steps)
    _, post_params = envs.make(trainer.config.env, tasks="post")
    n_post_subgoals = int(post_params.task_lens[0]) // env.colors_per_subgoal
    seeds = jax.tree.leaves(params)[0].shape[0]
    grid = trainer.config.env == "grid_pinpad"  # failure causes are read from grid cells
    keys = jax.random.split(jax.random.key(config.seed), seeds)

    per_layer, controllers = [], {}
    for layer in layers:
        @jax.jit
        def one_seed(base_params, key, layer=layer):
            train_key, eval_key = jax.random.split(key)
            ctrl, history = train_controllers(model, base_params, tokens, train_key, layer, cfg.steps, ctrl_cfg,
                                              cfg.lr, cfg.weight_decay, action_space)
            result = run_controlled(model, base_params, ctrl, ctrl_cfg, layer, env, post_params, eval_key,
                                    cfg.eval_episodes, action_space=action_space, last_states=grid)
            return result, history["agreement"][-1], ctrl

        result, train_agreement, ctrl = jax.device_get(jax.vmap(one_seed)(params, keys))
        success = np.asarray(result.success)
        per_layer.append({
            "layer": layer,
            "success_by_seed": success.mean(1).tolist(),
            "success": float(success.mean()),
            "subgoal_completion": subgoal_completion(np.asarray(result.progress), success, n_post_subgoals,
                                                     env.colors_per_subgoal),
            f"train_action_{action_space.metric}": float(np.mean(train_agreement)),
        })
        if grid:  # every seed's episodes together
            flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), result)
            per_layer[-1]["failure_causes"] = failure_causes(flat, int(post_params.time_limit), n_post_subgoals,
                                                             env.colors_per_subgoal)
        controllers[layer] = ctrl
        logging.warning("layer %d: post-task success %.3f", layer, per_layer[-1]["success"])
    best = max(per_layer, key=lambda r: r["success"])
    summary = {
        "controlled_layers": layers,
        "success_by_layer": [r["success"] for r in per_layer],
        "subgoal_completion_by_layer": [r["subgoal_completion"] for r in per_layer],
        "by_layer": per_layer,
        # fraction of post-task episodes by how they ended, per cause (irl/analysis/failures.py)
        **({"failure_causes_by_layer": {cause: [r["failure_causes"]["fractions"][cause] for r in per_layer]
                                        for cause in CAUSES}} if grid else {}),
        "best_layer": best["layer"],
        "mid_layer": model.n_layers // 2,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "rank": cfg.rank,
    }
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "control.json").write_text(json.dumps(summary, indent=2))
    render_solved_episode(workdir / "controlled_episode.png", model, params, controllers[best["layer"]], ctrl_cfg,
                          best["layer"], env, post_params, action_space)
    plot_curves(workdir / "control_success_by_layer.png", layers,
                {"post-task success": summary["success_by_layer"],
                 "per-subgoal completion": summary["subgoal_completion_by_layer"]},
                xlabel="controlled layer l", ylabel="rate",
                title="Supervised controllers, post-training task (unseen)")
    return summary
