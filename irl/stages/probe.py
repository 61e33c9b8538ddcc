"""Probe stage: linear probes of every layer of every pretrained seed, with figures."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from irl.analysis.probes import evaluate_probes, train_probes
from irl.figures import plot_curves
from irl.pretraining import load_pretrained


def probe(config, pretrained: str | Path, workdir: str | Path) -> dict:
    cfg = config.probe
    if cfg.steps < 1 or cfg.batch < 1 or cfg.eval_episodes < 1:
        raise ValueError(f"probe.steps, probe.batch and probe.eval_episodes must be >= 1, got {cfg}")
    trainer, params = load_pretrained(pretrained)
    model = trainer.model
    episodes = trainer.expert_data(cfg.batch, trainer.config.data.max_episode_steps)
    held_out = trainer.held_out_data(cfg.eval_episodes)
    key = jax.random.key(config.seed)
    seeds = jax.tree.leaves(params)[0].shape[0]

    @jax.jit
    def one_seed(base_params, key):
        train_key, eval_key = jax.random.split(key)
        probes, train_accuracy = train_probes(model, base_params, episodes, train_key, cfg.steps, cfg.lr, cfg.weight_decay)
        return (evaluate_probes(model, base_params, probes, held_out(eval_key),
                                colors_per_subgoal=trainer.env.colors_per_subgoal), train_accuracy[-1])

    results, _ = jax.device_get(jax.vmap(one_seed)(params, jax.random.split(key, seeds)))
    accuracy = np.asarray(results["accuracy_by_layer"])  # [seeds, L+1]
    by_time = np.nanmean(np.asarray(results["p_true_by_time"]), axis=0)  # [L+1, time]
    summary = {
        "accuracy_by_layer": accuracy.mean(0).tolist(),
        "accuracy_by_layer_by_seed": accuracy.tolist(),
        "chance": float(1 / 4),
        "p_true_by_time_in_segment": by_time.tolist(),
        "steps": cfg.steps,
        "batch": cfg.batch,
    }
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "probe.json").write_text(json.dumps(summary, indent=2))
    layers = list(range(accuracy.shape[1]))
    curves = {f"seed {i}": a for i, a in enumerate(accuracy)} if seeds > 1 else {}
    curves.update({"mean": accuracy.mean(0), "chance": [0.25] * len(layers)})
    plot_curves(workdir / "probe_accuracy_by_layer.png", layers, curves,
                xlabel="layer l (0 = embedding)", ylabel="held-out accuracy", title="Linear probe of the current subgoal")
    counts = np.asarray(results["count_by_time"]).sum(0)
    shown = np.flatnonzero(counts >= 50)
    plot_curves(workdir / "probe_p_true_by_time.png", shown.tolist(),
                {f"layer {l}": by_time[l, shown] for l in layers},
                xlabel="steps since the subgoal began", ylabel="p(true subgoal)",
                title="Probe confidence within a subgoal segment")
    return summary
