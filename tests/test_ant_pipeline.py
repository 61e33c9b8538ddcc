"""The pipeline on the ant: the config is the paper's, bad configs fail early, and the tiny
preset runs end to end: a Hawk pretrained on the shipped expert's episodes (Gaussian torques),
probed, steered by supervised controllers, and a metacontroller discovered in it."""

import json

import jax
import numpy as np
import pytest

from experiments.configs import ant
from irl import ant_data
from irl.ant_data import make_dataset
from irl.pretraining import Pretrainer, validate


def test_paper_preset_is_the_papers_table():
    c = ant.pretrain_config("paper")
    assert c.model.to_dict() == dict(arch="hawk", obs_size=41, n_actions=16, n_layers=8, width=256, n_heads=8,
                                     mlp_width=512, init_scale=0.1, encoder="linear")
    assert (c.data.batch, c.data.max_episode_steps, c.train.steps, c.loss.obs_coef) == (512, 500, 204_800, 10.0)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.schedule) == (3e-4, 0.03, "constant")
    control = ant.analysis_config("paper").control  # Tables A7/A8, the ant's column
    assert (control.rank, control.steps, control.batch, control.lr, control.weight_decay) == (None, 3200, 256, 3e-4, 0.03)
    discover = ant.discover_config("paper")  # SPEC.md section 6: a full-rank decoder, 32k steps of 128
    assert (discover.metacontroller.rank, discover.train.steps, discover.data.batch) == (None, 32_000, 128)
    assert (discover.optim.lr, discover.optim.weight_decay) == (3e-4, 0.03)


@pytest.mark.parametrize("preset", ant.PRESETS[1:])
def test_the_ants_controllers_and_decoder_are_full_rank_beyond_tiny(preset):
    assert ant.analysis_config(preset).control.rank is None
    assert ant.discover_config(preset).metacontroller.rank is None


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


def test_tiny_ant_pipeline_runs_end_to_end(tmp_path, monkeypatch):
    """`make reproduce ENV=ant PRESET=tiny`'s code path: expert check, pretraining, probes,
    supervised controllers, discovery, internal RL, injection, report with rates relative to the expert."""
    from irl.pipeline import reproduce

    config = ant.pretrain_config("tiny")
    trainer = Pretrainer(config)
    assert trainer.dataset.obs.shape == (8, 501, 41) and trainer.held_out.obs.shape == (4, 501, 41)
    tokens = trainer.tokens(jax.random.key(0), trainer.dataset)
    assert tokens.obs.shape == (4, 24, 41) and tokens.actions.shape == (4, 24, 8) and tokens.obs.dtype == np.float32

    made = []
    monkeypatch.setattr(ant_data, "make_dataset",
                        lambda *a, **k: made.append(k.get("deterministic", False)) or make_dataset(*a, **k))
    results = reproduce("ant", "tiny", tmp_path, progress=False, log=lambda *_: None)
    # each episode set is made once, in the pretraining workdir, and read back by the later
    # stages: sampled torques for pretraining, the mean action for the metacontroller
    assert made == [False, True]
    assert all((tmp_path / "pretrain" / name).exists() for name in ("ant_episodes.npz", "ant_episodes_mean_action.npz"))
    assert set(results["stage_seconds"]) == {"expert", "pretrain", "probe", "control", "discover", "rl", "inject"}
    assert 0.0 <= results["expert"]["success_pretrain_tasks"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    losses = [np.mean(r["loss"]) for r in rows if "loss" in r]
    assert len(losses) == 2 and np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert np.isfinite(results["pretrain"]["action_mse"])
    assert len(results["probe"]["accuracy_by_layer"]) == config.model.n_layers + 1
    # supervised controllers: one code per colour, Gaussian torques, judged on the post task
    assert len(results["supervised_control"]["success_by_layer"]) == 1
    control = json.loads((tmp_path / "control" / "control.json").read_text())
    assert control["controlled_layers"] == [1] and np.isfinite(control["by_layer"][0]["train_action_mse"])
    relative = results["relative_to_expert"]
    expert_post = results["expert"]["success_post_task"]
    assert np.isclose(relative["supervised_control_by_layer"][0] * max(expert_post, 1e-9),
                      results["supervised_control"]["success_by_layer"][0])
    discovery = json.loads((tmp_path / "discover" / "discovery.json").read_text())
    assert discovery["best_alpha"] in ant.discover_config("tiny").alphas and discovery["tolerance"] == 5
    assert np.isfinite(discovery["metacontroller"]["action_mse"])
    report = (tmp_path / "report.md").read_text()
    # internal RL and raw-action RL on the post-training task, also relative to the expert
    assert set(results["rl"]) == {"internal", "raw_action"}
    assert set(results["relative_to_expert"]["rl_final_success_median"]) == {"internal", "raw_action"}
    rl_summary = json.loads((tmp_path / "rl" / "rl.json").read_text())
    for method, levels in results["relative_to_expert"]["rl_episodes_to"].items():
        curve = rl_summary[method]["curve"]
        for level, episodes in levels.items():  # the first episode count at which the median run reached it
            reached = [e for e, m in zip(curve["episodes"], curve["median"]) if m >= float(level) * expert_post]
            assert episodes == (reached[0] if reached and expert_post > 0 else None)
    # the injection analysis: rates are fractions of the eligible episodes, or None without any
    injected = json.loads((tmp_path / "inject" / "injection.json").read_text())
    assert injected["collect_episodes"] == 4 and len(injected["codes_per_colour"]) == 4
    for rates in (injected["at_step"], injected["unseen_transition"] or {}):
        assert all(v is None or 0.0 <= v <= 1.0 for k, v in rates.items() if k.endswith("injection"))
    assert "expert's" in report and "Internal RL" in report and "injection" in report
    for figure in ("pretrain/success_vs_time.png", "probe/probe_accuracy_by_layer.png", "control/controlled_episode.png",
                   "discover/beta_traces.png", "rl/rl_curves.png", "rl/internal_policy_episode.png"):
        assert figure in report and (tmp_path / figure).stat().st_size > 0
