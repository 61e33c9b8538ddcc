"""The whole pipeline for one environment and preset: expert check, pretraining, probes,
supervised controllers, discovery, internal RL (and, on the ant, the latent-code injection
analysis), then the report.

Each stage writes into `<workdir>/<stage>/` and is done when its summary JSON exists; a done
stage is reused, never rerun (pretraining also resumes from its last checkpoint when it was
cut off). The seconds each stage took when it ran are kept in `<workdir>/stage_seconds.json`.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Callable

import jax
import ml_collections
import numpy as np

import irl.envs as envs
from irl.data import make_expert_data

STAGES = ("expert", "pretrain", "probe", "control", "discover", "rl")
SUMMARY_FILES = {
    "expert": "expert.json",
    "pretrain": "results.json",
    "probe": "probe.json",
    "control": "control.json",
    "discover": "discovery.json",
    "rl": "rl.json",
    "inject": "injection.json",
}


def expert_check(env_name: str, workdir: Path, episodes: int, seed: int = 0) -> dict:
    """Success of the expert (the grid's eps=0 one; the ant's shipped one with its mean action)
    on the pretraining tasks and on the post-training task."""
    key = jax.random.key(seed)
    if env_name == "ant_pinpad":
        from irl.experts.ant_expert import AntExpert, success_rates

        rates = success_rates(AntExpert.load(), key, episodes)
        # the grid's names for the two success rates; the rest under success_rates' own names
        summary = {"success_pretrain_tasks": rates.pop("success_pretrain"), "success_post_task": rates.pop("success_post"),
                   **rates}
    else:
        summary = {}
        for tasks, name in (("pretrain", "pretrain_tasks"), ("post", "post_task")):
            env, params = envs.make(env_name, tasks=tasks)
            batch = jax.device_get(make_expert_data(env, params, episodes)(key))
            summary[f"success_{name}"] = float(np.mean(batch.success))
            summary[f"length_{name}"] = float(np.mean(batch.length))
    summary["episodes"] = episodes
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / SUMMARY_FILES["expert"]).write_text(json.dumps(summary, indent=2))
    return summary


def stage_runners(configs: dict[str, ml_collections.ConfigDict], env_name: str, workdir: Path,
                  progress: bool) -> dict[str, Callable[[], dict]]:
    """stage -> a call that runs it and returns its summary."""
    from irl.stages.control import control
    from irl.stages.discover import discover
    from irl.stages.inject import inject
    from irl.stages.pretrain import pretrain
    from irl.stages.probe import probe
    from irl.stages.rl import rl

    pretrained, discovered = workdir / "pretrain", workdir / "discover"
    return {
        "expert": lambda: expert_check(env_name, workdir / "expert", configs["expert_episodes"]),
        "pretrain": lambda: pretrain(configs["pretrain"], pretrained, progress=progress),
        "probe": lambda: probe(configs["analysis"], pretrained, workdir / "probe"),
        "control": lambda: control(configs["analysis"], pretrained, workdir / "control"),
        "discover": lambda: discover(configs["discover"], pretrained, discovered, progress=progress),
        "rl": lambda: rl(configs["rl"], pretrained, discovered, workdir / "rl", progress=progress),
        "inject": lambda: inject(configs["inject"], discovered, workdir / "inject"),
    }


# env -> (environment, stages it runs, expert-check episodes at tiny and at other presets)
CONFIGS = {"grid": ("grid_pinpad", STAGES, (256, 4096)), "ant": ("ant_pinpad", STAGES + ("inject",), (8, 256))}


def stage_configs(env: str, preset: str) -> dict:
    """Every stage's config at `preset`, from experiments/configs/<env>.py (which validates
    the preset before any compute)."""
    module = importlib.import_module(f"experiments.configs.{env}")
    tiny, other = CONFIGS[env][2]
    return {"expert_episodes": tiny if preset == "tiny" else other, "pretrain": module.pretrain_config(preset),
            **{stage: make(preset) for stage, make in module.STAGE_CONFIGS.items()}}


def reproduce(env: str, preset: str, workdir: str | Path, progress: bool = True, log=print) -> dict:
    """Run (or reuse) every stage, then write results.json and report.md. Returns the results."""
    from irl.report import write_report

    if env not in CONFIGS:
        raise ValueError(f"env must be one of {tuple(CONFIGS)}, got {env!r}")
    env_name, stages, _ = CONFIGS[env]
    configs = stage_configs(env, preset)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seconds_path = workdir / "stage_seconds.json"
    stage_seconds = json.loads(seconds_path.read_text()) if seconds_path.exists() else {}
    runners = stage_runners(configs, env_name, workdir, progress)
    summaries = {}
    for stage in stages:
        done = workdir / stage / SUMMARY_FILES[stage]
        if done.exists():
            log(f"[{stage}] done before, reusing {done}")
            summaries[stage] = json.loads(done.read_text())
            continue
        log(f"[{stage}] running")
        start = time.perf_counter()
        summaries[stage] = runners[stage]()
        stage_seconds[stage] = time.perf_counter() - start
        seconds_path.write_text(json.dumps(stage_seconds, indent=2))
        log(f"[{stage}] {stage_seconds[stage]:.0f} s")
    return write_report(env, preset, workdir, summaries, stage_seconds)
