"""Internal-RL stage: every method on the post-training task, curves, summary, a rendered
episode of the trained internal policy.

Each method trains in `<workdir>/<method>/` through `irl.training.run` (resumable: re-running
continues where it stopped). `<workdir>/rl.json` holds per method the median success over
runs (pretrained models x RL seeds) against episodes seen per run, with the 25-75% band.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
from absl import logging

from irl import training
from irl.envs.render import render_recorded, save_png
from irl.figures import plot_rl_curves
from irl.rl import policy
from irl.rl.learner import INTERNAL_METHODS, Learner, PretrainedModels, make_train, share_programs, validate

# the discovery method whose Discovered each internal-RL method acts on
DISCOVERY_METHODS = {"internal": "metacontroller", "beta1": "beta1", "cotrained": "cotrained"}
THRESHOLDS = (0.5, 0.8)


def rl(config, pretrained: str | Path, discovery: str | Path, workdir: str | Path, progress: bool = True) -> dict:
    """Load the pretrained models and the discovered metacontrollers, then `train_methods`."""
    validate(config)
    from irl.discovery import load_discovered
    from irl.pretraining import load_pretrained

    sources = {}
    for method in config.methods:
        if method == "raw_action":
            trainer, params = load_pretrained(pretrained)
            sources[method] = PretrainedModels(trainer.model, params)
        else:
            sources[method] = load_discovered(discovery, DISCOVERY_METHODS[method])
    return train_methods(config, sources, workdir, progress)


def success_curve(rows: list[dict]) -> dict:
    """Median and quartiles over runs of each chunk's mean training success, placed at the
    episodes seen per run by the chunk's end (each chunk's mean episodes per update, averaged
    over runs, times its updates). A level is thus reached, by episodes_to, at the end of the
    first chunk whose mean reaches it: up to one chunk later than within the chunk."""
    rows = [r for r in rows if "success" in r]
    runs = np.array([np.ravel(r["success"]) for r in rows])  # [chunks, runs]
    q25, median, q75 = np.percentile(runs, [25, 50, 75], axis=1) if rows else ([], [], [])
    updates = np.diff([0] + [int(r["step"]) for r in rows])
    episodes = np.cumsum([np.mean(r["episodes"]) * n for r, n in zip(rows, updates)])
    return {"episodes": [int(round(e)) for e in episodes],
            "median": list(map(float, median)), "q25": list(map(float, q25)), "q75": list(map(float, q75))}


def episodes_to(curve: dict, level: float) -> int | None:
    """Episodes at which the median first reaches `level` (None: never)."""
    hits = [e for e, m in zip(curve["episodes"], curve["median"]) if m >= level]
    return hits[0] if hits else None


def train_method(config, learner: Learner, workdir: Path, progress: bool) -> tuple[dict, dict]:
    start = time.perf_counter()
    state = training.run(workdir, learner.init_state, learner.chunk_fn(), total_steps=config.train.updates,
                         chunk_steps=config.train.chunk_updates, description=f"rl {learner.method}", progress=progress)
    rows = training.read_metrics(workdir)
    curve = success_curve(rows)
    updates_per_s = float(np.median([r["steps_per_s"] for r in rows])) if rows else float("nan")
    episodes_per_update = float(np.mean([np.mean(r["episodes"]) for r in rows])) if rows else float("nan")
    episodes_per_s = updates_per_s * episodes_per_update * learner.runs
    summary = {
        "final_success_median": curve["median"][-1] if curve["median"] else float("nan"),
        "episodes": curve["episodes"][-1] if curve["episodes"] else 0,
        **{f"episodes_to_{level}": episodes_to(curve, level) for level in THRESHOLDS},
        "runs": learner.runs,
        "final_decisions_per_episode": float(np.mean(rows[-1]["decisions"])) if rows else float("nan"),
        "train_seconds": float(state["elapsed"]),
        "episodes_per_s": episodes_per_s,
        "paid_raw_steps_per_s": updates_per_s * learner.paid_steps_per_update() * learner.runs,
        "wall_seconds_this_call": time.perf_counter() - start,
        "curve": curve,
    }
    return summary, state


def render_trained_episode(path: Path, learner: Learner, state: dict, tries: int, seed: int) -> None:
    """A post-task episode of run (model 0, RL seed 0) of a trained internal policy: the first
    solved one of `tries`, else the one that got furthest."""
    first = lambda tree, n=1: jax.tree.map(lambda x: x[(0,) * n], tree)
    params, frozen, cfg = first(state["policy"], 2), first(learner.frozen), learner.policy_cfg

    @jax.jit
    def run(key):
        decide = lambda s, e, k: policy.step(params, cfg, s, e, k)
        return learner.internal_env.rollout(frozen, key, tries, decide, policy.initial_state(cfg, (tries,)),
                                            record_obs=True)[0]

    traj = jax.device_get(run(jax.random.key(seed + 7)))
    solved = np.flatnonzero(traj.success)
    i = int(solved[0]) if solved.size else int(np.argmax(traj.progress))
    title = (f"{learner.method} RL, post task: {'solved' if traj.success[i] else 'not solved'}, "
             f"{int(traj.decision[i].sum())} decisions")
    save_png(render_recorded(traj, i, title=title), path)


def train_methods(config, sources: dict, workdir: str | Path, progress: bool = True) -> dict:
    """Train every method of config.methods on its source (a Discovered, or PretrainedModels for
    raw_action); write rl.json and the figures. Returns the rl.json dict."""
    validate(config)
    missing = [m for m in config.methods if m not in sources]
    if missing:
        raise ValueError(f"no source for methods {missing}")
    learners = {method: make_train(config, method, sources[method]) for method in config.methods}
    share_programs(list(learners.values()))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json(indent=2))
    results = {}
    for method, learner in learners.items():
        results[method], state = train_method(config, learner, workdir / method, progress)
        logging.warning("rl %s: final median success %.3f after %d episodes per run", method,
                        results[method]["final_success_median"], results[method]["episodes"])
        if method == "internal" or (method in INTERNAL_METHODS and "internal" not in learners):
            render_trained_episode(workdir / f"{method}_policy_episode.png", learner, state, config.render_tries,
                                   config.seed)
    (workdir / "rl.json").write_text(json.dumps(results, indent=2))
    curves = {m: r["curve"] for m, r in results.items()}
    runs = next(iter(results.values()))["runs"]
    title = f"RL on the post-training task, median and 25-75% of {runs} runs"
    plot_rl_curves(workdir / "rl_curves.png", curves, title)
    plot_rl_curves(workdir / "rl_curves_log.png", curves, title, log_x=True)
    return results
