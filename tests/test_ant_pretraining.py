"""The base model on the ant: the config is the paper's, bad configs fail early, and the tiny
preset pretrains a Hawk on the shipped expert's episodes end to end (Gaussian torques) and
probes it."""

import json

import jax
import numpy as np
import pytest

from experiments.configs import ant, grid
from irl.pretraining import Pretrainer, validate
from irl.stages.control import control
from irl.stages.pretrain import pretrain
from irl.stages.probe import probe


def test_paper_preset_is_the_papers_table():
    c = ant.pretrain_config("paper")
    assert c.model.to_dict() == dict(arch="hawk", obs_size=41, n_actions=16, n_layers=8, width=256, n_heads=8,
                                     mlp_width=512, init_scale=0.1, encoder="linear")
    assert (c.data.batch, c.data.max_episode_steps, c.train.steps, c.loss.obs_coef) == (512, 500, 204_800, 10.0)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.schedule) == (3e-4, 0.03, "constant")


@pytest.mark.parametrize("field, value, message", [
    ("model.n_actions", 8, "n_actions must be 16"),
    ("model.obs_size", 637, "obs_size must be 41"),
    ("data.pack_length", 64, "pack_length must be 0"),
    ("data.max_episode_steps", 501, "max_episode_steps"),
    ("data.episodes", 0, "data.episodes"),
])
def test_bad_ant_configs_fail_before_compute(field, value, message):
    config = ant.pretrain_config("tiny")
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_tiny_ant_pretraining_and_probes_run_end_to_end(tmp_path):
    config = ant.pretrain_config("tiny")
    trainer = Pretrainer(config)
    assert trainer.dataset.obs.shape == (8, 501, 41) and trainer.held_out.obs.shape == (4, 501, 41)
    tokens = trainer.tokens(jax.random.key(0), trainer.dataset)
    assert tokens.obs.shape == (4, 24, 41) and tokens.actions.shape == (4, 24, 8) and tokens.obs.dtype == np.float32
    results = pretrain(config, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [np.mean(r["loss"]) for r in rows if "loss" in r]
    assert len(losses) == 2 and np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert 0.0 <= results["success_any_pretrain_task"] <= 1.0 and np.isfinite(results["action_mse"])
    assert (tmp_path / "success_vs_time.png").exists()
    summary = probe(ant.analysis_config("tiny"), tmp_path, tmp_path / "probe")
    assert len(summary["accuracy_by_layer"]) == config.model.n_layers + 1
    assert all(0.0 <= a <= 1.0 for a in summary["accuracy_by_layer"])
    assert (tmp_path / "probe" / "probe_accuracy_by_layer.png").exists()


def test_the_control_stage_refuses_an_ant_model_before_compute(tmp_path):
    (tmp_path / "config.json").write_text(ant.pretrain_config("tiny").to_json())
    with pytest.raises(ValueError, match="grid_pinpad models only"):
        control(grid.analysis_config("tiny"), tmp_path, tmp_path / "control")
