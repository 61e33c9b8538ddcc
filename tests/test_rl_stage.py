"""The RL stage on the tiny preset on Discovered objects built from random-init models (no
dependence on the discovery code): rl.json, the curves, the rendered episode, and resumption.
One internal method and raw_action (beta1 and cotrained are the internal code path on another
Discovered; the end-to-end pipeline test runs all four)."""

import json

import numpy as np

from experiments.configs.grid import rl_config
from irl import training
from irl.rl.learner import PretrainedModels
from irl.stages.rl import train_methods
from test_internal_env import tiny_discovered


def test_tiny_rl_stage_writes_rl_json_curves_episode_and_resumes(tmp_path):
    config = rl_config("tiny")
    config.models = 0  # every one of the 2 pretrained models
    config.methods = ("internal", "raw_action")
    metacontroller = tiny_discovered(seeds=2)
    sources = {
        "internal": metacontroller,
        "raw_action": PretrainedModels(metacontroller.model, metacontroller.base_params),
    }
    results = train_methods(config, sources, tmp_path, progress=False)
    saved = json.loads((tmp_path / "rl.json").read_text())
    assert set(saved) == set(config.methods)
    runs = 2 * config.rl_seeds
    chunks = config.train.updates // config.train.chunk_updates
    for method, r in saved.items():
        assert r["episodes"] == config.train.updates * config.train.batch
        assert 0.0 <= r["final_success_median"] <= 1.0 and r["runs"] == runs
        assert {"episodes_to_0.5", "episodes_to_0.8"} <= set(r)
        curve = r["curve"]
        assert curve["episodes"] == [config.train.batch * config.train.chunk_updates * (i + 1) for i in range(chunks)]
        assert all(lo <= m <= hi for lo, m, hi in zip(curve["q25"], curve["median"], curve["q75"]))
        rows = training.read_metrics(tmp_path / method)
        assert np.shape(rows[-1]["success"]) == (2, config.rl_seeds)
    for name in ("rl_curves.png", "rl_curves_log.png", "internal_policy_episode.png"):
        assert (tmp_path / name).stat().st_size > 0

    # a second call resumes from the final checkpoints: nothing retrains, the same numbers
    again = train_methods(config, sources, tmp_path, progress=False)
    for method in config.methods:
        assert again[method]["curve"] == results[method]["curve"]
    assert len(training.read_metrics(tmp_path / "internal")) == chunks
