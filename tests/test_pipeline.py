"""The tiny preset end to end: pretraining, then probes and supervised controllers on it."""

import json

import numpy as np
import pytest

from experiments.configs.grid import analysis_config, pretrain_config
from irl import training


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from irl.stages.pretrain import pretrain

    workdir = tmp_path_factory.mktemp("pretrain")
    return workdir, pretrain(pretrain_config("tiny"), workdir, progress=False)


def test_pretraining_writes_results_curve_and_metrics_and_learns(pretrained):
    workdir, results = pretrained
    config = pretrain_config("tiny")
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["steps"] == config.train.steps and len(saved["success_any_pretrain_task_by_seed"]) == config.seeds
    for key in ("success_any_pretrain_task", "success_post_task", "action_accuracy", "tokens_per_s", "mfu"):
        assert key in results and np.isfinite(results[key])
    assert (workdir / "success_vs_time.png").stat().st_size > 0
    rows = training.read_metrics(workdir)
    train_rows = [r for r in rows if "loss" in r]
    assert np.mean(train_rows[-1]["loss"]) < np.mean(train_rows[0]["loss"])
    assert results["action_accuracy"] > 0.3  # above the 0.25 of guessing


def test_probes_on_the_pretrained_model(pretrained, tmp_path):
    from irl.stages.probe import probe

    summary = probe(analysis_config("tiny"), pretrained[0], tmp_path)
    layers = pretrain_config("tiny").model.n_layers + 1
    assert len(summary["accuracy_by_layer"]) == layers
    assert all(0.0 <= a <= 1.0 for a in summary["accuracy_by_layer"])
    assert (tmp_path / "probe_accuracy_by_layer.png").exists() and (tmp_path / "probe_p_true_by_time.png").exists()


def test_supervised_controllers_on_the_pretrained_model(pretrained, tmp_path):
    from irl.stages.control import control

    summary = control(analysis_config("tiny"), pretrained[0], tmp_path)
    assert summary["controlled_layers"] == [1] and len(summary["success_by_layer"]) == 1
    assert 0.0 <= summary["subgoal_completion_by_layer"][0] <= 1.0
    assert (tmp_path / "control_success_by_layer.png").exists() and (tmp_path / "controlled_episode.png").exists()
