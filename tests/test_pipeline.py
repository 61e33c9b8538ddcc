"""The tiny preset end to end through `make reproduce`'s own code path (irl.pipeline.reproduce):
expert check, pretraining, probes, supervised controllers, discovery, internal RL, report."""

import json

import jax
import numpy as np
import pytest

from experiments.configs.grid import discover_config, pretrain_config, rl_config
from irl import training

CONTRACT = {
    "pretrain": {"success_any_pretrain_task", "success_post_task", "tokens_per_s", "mfu"},
    "probe": {"accuracy_by_layer"},
    "supervised_control": {"success_by_layer", "controlled_layer"},
    "discovery": {"best_alpha", "switch_f1", "beta_binary_fraction", "switches_per_episode", "subgoals_per_episode",
                  "by_alpha", "baselines", "code_readout", "code_oracle"},
    "expert": {"success_pretrain_tasks", "success_post_task"},
}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    from irl.pipeline import reproduce

    workdir = tmp_path_factory.mktemp("grid-tiny")
    return workdir, reproduce("grid", "tiny", workdir, progress=False, log=lambda *_: None)


def test_results_json_holds_every_headline_number(reproduced):
    workdir, results = reproduced
    saved = json.loads((workdir / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["env"] == "grid" and saved["preset"] == "tiny"
    assert set(saved["stage_seconds"]) == {"expert", "pretrain", "probe", "control", "discover", "rl"}
    for section, keys in CONTRACT.items():
        assert keys <= set(saved[section]), section
    assert set(saved["rl"]) == set(rl_config("tiny").methods)
    for method in saved["rl"].values():
        assert {"final_success_median", "episodes", "episodes_to_0.5", "episodes_to_0.8"} <= set(method)
    assert saved["expert"]["success_pretrain_tasks"] == 1.0 and saved["expert"]["success_post_task"] == 1.0
    discovery = saved["discovery"]  # the sweep and every baseline, not the picked alpha alone
    assert [run["alpha"] for run in discovery["by_alpha"]] == list(discover_config("tiny").alphas)
    assert set(discovery["baselines"]) == {"beta1", "cotrained", "compile"}
    report = (workdir / "report.md").read_text()
    for name in discovery["baselines"]:
        assert f"| baseline: {name} (" in report
    assert report.count("| metacontroller (") == len(discovery["by_alpha"])
    for figure in ("pretrain/success_vs_time.png", "probe/probe_accuracy_by_layer.png", "discover/beta_traces.png",
                   "rl/rl_curves.png", "rl/internal_policy_episode.png"):
        assert figure in report and (workdir / figure).stat().st_size > 0


def test_done_stages_are_reused_not_rerun(reproduced):
    from irl.pipeline import reproduce

    workdir, results = reproduced
    logged = []
    again = reproduce("grid", "tiny", workdir, progress=False, log=logged.append)
    assert all("reusing" in line for line in logged) and len(logged) == 6
    assert again["stage_seconds"] == results["stage_seconds"]


def test_pretraining_writes_results_curve_and_metrics_and_learns(reproduced):
    workdir = reproduced[0] / "pretrain"
    config = pretrain_config("tiny")
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["steps"] == config.train.steps and len(saved["success_any_pretrain_task_by_seed"]) == config.seeds
    for key in ("success_any_pretrain_task", "success_post_task", "action_accuracy", "tokens_per_s", "mfu"):
        assert np.isfinite(saved[key])
    rows = training.read_metrics(workdir)
    train_rows = [r for r in rows if "loss" in r]
    assert np.mean(train_rows[-1]["loss"]) < np.mean(train_rows[0]["loss"])
    assert saved["action_accuracy"] > 0.3  # above the 0.25 of guessing
    # successes within the steps the model trained on are some of all its successes
    assert 0.0 <= saved["success_any_pretrain_task_within_training_length"] <= saved["success_any_pretrain_task"]


def test_probes_and_controllers(reproduced):
    workdir = reproduced[0]
    probe = json.loads((workdir / "probe" / "probe.json").read_text())
    assert len(probe["accuracy_by_layer"]) == pretrain_config("tiny").model.n_layers + 1
    assert all(0.0 <= a <= 1.0 for a in probe["accuracy_by_layer"])
    assert (workdir / "probe" / "probe_p_true_by_time.png").exists()
    control = json.loads((workdir / "control" / "control.json").read_text())
    assert control["controlled_layers"] == [1] and len(control["success_by_layer"]) == 1
    assert 0.0 <= control["subgoal_completion_by_layer"][0] <= 1.0
    causes = control["failure_causes_by_layer"]
    assert causes["success"] == control["success_by_layer"]
    assert abs(sum(fractions[0] for fractions in causes.values()) - 1) < 1e-6
    assert (workdir / "control" / "controlled_episode.png").exists()


def test_discovery_with_one_alpha_and_every_option_of_ours(reproduced, tmp_path):
    """A single alpha is a sweep of one (it once crashed the summary); the encoder that reads
    only the future's observations, the expert's-policy targets, the dropped prefixes and the
    second view (windowed, on a turned board) train through the same stage."""
    from irl.stages.discover import discover

    config = discover_config("tiny")
    config.update(methods=("metacontroller",), alphas=(0.3,))
    config.metacontroller.encoder_inputs = "future_observations"
    config.train.action_targets = "expert_policy"
    config.data.drop_prefixes = 0.5
    config.train.update(view_window=3, view_symmetry=True)
    config.eval.update(prior_episodes=0)
    config.eval.code_oracle.steps = 0
    saved = discover(config, reproduced[0] / "pretrain", tmp_path, progress=False)
    assert saved["best_alpha"] == 0.3 and [r["alpha"] for r in saved["by_alpha"]] == [0.3]
    assert "prior_codes" not in saved and "code_oracle" not in saved
    trained = [r for r in training.read_metrics(tmp_path / "metacontroller") if "loss" in r]
    assert np.isfinite(trained[-1]["second_view_action_nll"]).all()


def test_a_warm_start_begins_at_the_exported_params_and_holds_the_parts_rl_keeps_for_its_steps(reproduced):
    """init_from starts every seed and alpha at the exported metacontroller; for
    train.init_frozen_steps only the encoder and embedder move, then every part does."""
    from irl.discovery import FROZEN_AT_START, Discoverer, load_discovered

    config = discover_config("tiny")
    config.update(methods=("metacontroller",), init_from=str(reproduced[0] / "discover"))
    config.train.init_frozen_steps = config.train.chunk_steps
    discoverer = Discoverer(config, reproduced[0] / "pretrain")
    method = discoverer.method("metacontroller")
    exported = load_discovered(reproduced[0] / "discover", "metacontroller").mc_params
    state = discoverer.init_state(method)
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    for i in range(len(method.alphas)):
        assert same(jax.tree.map(lambda x: x[:, i], state["params"]["mc"]), exported)
    chunk = discoverer.chunk_fn(method)
    held, _ = chunk(state)
    for part, value in held["params"]["mc"].items():
        assert same(value, state["params"]["mc"][part]) == (part in FROZEN_AT_START), part
    released, _ = chunk(held)
    for part in FROZEN_AT_START:
        assert not same(released["params"]["mc"][part], held["params"]["mc"][part]), part


@pytest.mark.parametrize("window, symmetry, same", [(60, False, True), (2, False, False), (60, True, False)])
def test_the_second_view_is_the_controlled_pass_seen_differently(reproduced, window, symmetry, same):
    """The same codes steer the base model through the episodes seen differently: through an
    attention window as long as the episode it is the controlled pass itself; through a short
    window, or on a turned board, it scores differently."""
    from irl.data import episode_tokens
    from irl.discovery import Discoverer, take

    config = discover_config("tiny")
    config.train.update(view_window=window, view_symmetry=symmetry)
    discoverer = Discoverer(config, reproduced[0] / "pretrain")
    method = discoverer.method("metacontroller")
    trainable = method.init(jax.random.key(0))
    trainable["mc"]["decoder"] = jax.tree.map(lambda w: 30 * w, trainable["mc"]["decoder"])  # a controller that matters
    base = take(discoverer.base_params, 0)
    tokens = episode_tokens(discoverer.expert(jax.random.key(1)))
    e = discoverer.model.lower(base, tokens.obs, discoverer.layer)
    _, m = method.loss(trainable, base, e, tokens, jax.random.key(2), 0.1)
    assert np.isfinite(m["second_view_action_nll"])
    assert np.isclose(m["second_view_action_nll"], m["action_nll"], rtol=1e-5) == same


def test_subgoal_codes_nll_is_measured_on_discoverys_held_out_episodes(reproduced):
    """The NLL of codes naming the subgoal (experiments/subgoal_code_nll.py) is fitted on
    training batches and reported on the held-out episodes discovery measures on, not on
    more draws of the training sampler."""
    from irl.analysis import labelled_metacontroller as labelled
    from irl.analysis.supervised_control import N_SUBGOALS
    from irl.control import metacontroller as mc
    from irl.data import episode_tokens
    from irl.discovery import Discoverer, take

    config = discover_config("tiny")
    discoverer = Discoverer(config, reproduced[0] / "pretrain")
    decoder, measured = labelled.subgoal_code_nll(config, discoverer, steps=2, lr=3e-3, scale=3.0)
    cfg = discoverer.method("metacontroller").mc_cfg
    params = {**mc.init(jax.random.key(0), cfg), **decoder}
    held_out = episode_tokens(discoverer.held_out())
    nll = labelled.losses(params, cfg, discoverer.model, take(discoverer.base_params, 0), held_out, jax.random.key(0),
                          discoverer.layer, N_SUBGOALS, discoverer.action_space, layout="one_hot")["action_nll"]
    assert np.isclose(measured["controlled_action_nll"], float(nll), rtol=1e-5)


def test_discovery(reproduced):
    from irl.discovery import EXPORTED, load_discovered

    workdir = reproduced[0] / "discover"
    config = discover_config("tiny")
    saved = json.loads((workdir / "discovery.json").read_text())
    assert saved["best_alpha"] in config.alphas and len(saved["by_alpha"]) == len(config.alphas)
    for key in ("switch_f1", "beta_binary_fraction", "switches_per_episode", "subgoals_per_episode"):
        assert np.isfinite(saved[key])
    for row in saved["by_alpha"]:
        assert {"alpha", "kl", "action_nll", "switch_f1", "precision", "recall", "beta_binary_fraction",
                "switches_per_episode", "sampled", "hard_switch_action_nll"} <= set(row)
        assert set(row["code_readout"]) == {"subgoal", "first_action", "target_cell"}
    for method in ("beta1", "cotrained", "compile"):
        assert 0.0 <= saved[method]["switch_f1"] <= 1.0
    assert saved["beta1"]["beta_binary_fraction"] == 1.0  # beta is 1 at every step
    for tasks, n_subgoals in (("pretrain", 3), ("post", 6)):  # the metacontroller alone on prior codes
        prior = saved["prior_codes"][tasks]
        assert prior["episodes"] == config.eval.prior_episodes and prior["decisions_per_episode"] >= 1
        reached = prior["subgoals"]["reached"]
        assert len(reached) == n_subgoals and prior["success"] == reached[-1]
    oracle = saved["code_oracle"]  # one code per subgoal through the frozen decoder, switched by the truth
    assert oracle["steps"] == config.eval.code_oracle.steps and oracle["fit_on"] == "pretrain"
    assert 0.0 <= oracle["success"] <= 1.0
    assert np.isfinite(oracle["train_action_nll"]["last"]) and len(oracle["code_norms"]) == 4
    assert len(saved["cotrained"]["by_alpha"]) == len(config.cotrained.alphas)
    assert (workdir / "rate_distortion.png").stat().st_size > 0
    seeds = pretrain_config("tiny").seeds
    for method in EXPORTED:
        found = load_discovered(workdir, method)
        assert found.seeds == seeds and found.layer == found.model.n_layers // 2
        assert found.mc_cfg.force_beta_one == (method == "beta1")
        assert jax.tree.leaves(found.base_params)[0].shape[0] == seeds


def test_internal_rl_writes_curves_and_an_episode_and_resumes(reproduced):
    from irl.stages.rl import rl

    workdir = reproduced[0] / "rl"
    config = rl_config("tiny")
    saved = json.loads((workdir / "rl.json").read_text())
    assert set(saved) == set(config.methods)
    chunks = config.train.updates // config.train.chunk_updates
    for method in config.methods:
        result = saved[method]
        assert 0.0 <= result["final_success_median"] <= 1.0 and result["runs"] == config.models * config.rl_seeds
        curve = result["curve"]
        # episodes seen: each slot plays one or more (rollout_steps > T: back to back)
        per_update = np.array([np.mean(r["episodes"]) for r in training.read_metrics(workdir / method)])
        assert config.train.rollout_steps > 100 and (per_update >= config.train.batch).all()
        assert curve["episodes"] == [round(e) for e in np.cumsum(per_update * config.train.chunk_updates)]
        assert result["episodes"] == curve["episodes"][-1] and len(curve["episodes"]) == chunks
        assert all(lo <= m <= hi for lo, m, hi in zip(curve["q25"], curve["median"], curve["q75"]))
        assert np.shape(training.read_metrics(workdir / method)[-1]["success"]) == (config.models, config.rl_seeds)
    for name in ("rl_curves.png", "rl_curves_log.png", "internal_policy_episode.png"):
        assert (workdir / name).stat().st_size > 0

    # a second call resumes from the final checkpoints: nothing retrains, the same numbers
    again = rl(config, reproduced[0] / "pretrain", reproduced[0] / "discover", workdir, progress=False)
    assert {m: r["curve"] for m, r in again.items()} == {m: r["curve"] for m, r in saved.items()}
    assert len(training.read_metrics(workdir / "internal")) == chunks


def test_internal_rl_methods_share_one_program_and_the_beta1_gate_stays_forced(reproduced):
    from irl.discovery import load_discovered
    from irl.pretraining import load_pretrained
    from irl.rl.learner import PretrainedModels, make_train, share_programs
    from irl.stages.rl import DISCOVERY_METHODS

    config = rl_config("tiny")
    learners = {m: make_train(config, m, load_discovered(reproduced[0] / "discover", d))
                for m, d in DISCOVERY_METHODS.items()}
    trainer, params = load_pretrained(reproduced[0] / "pretrain")
    learners["raw_action"] = make_train(config, "raw_action", PretrainedModels(trainer.model, params))
    share_programs(list(learners.values()))
    assert learners["beta1"].program is learners["internal"].program is learners["cotrained"].program
    assert learners["raw_action"].program is None  # its own, built when first run
    # the pipeline's run shared it too: beta1 still decides at every raw step, the metacontroller does not
    for method, every_step in (("beta1", True), ("internal", False)):
        rows = training.read_metrics(reproduced[0] / "rl" / method)
        decisions, length = (np.concatenate([np.ravel(r[k]) for r in rows]) for k in ("decisions", "length"))
        assert np.array_equal(decisions, length) == every_step


@pytest.mark.parametrize("env, preset", [("maze", "tiny"), ("ant", "huge")])
def test_bad_env_or_preset_fails_before_any_compute(env, preset, tmp_path):
    from irl.pipeline import reproduce

    with pytest.raises(ValueError, match="env must be|unknown preset"):
        reproduce(env, preset, tmp_path / "run", log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def penalised_loss(pretrained, alpha, gate_bias=None, **train):
    """(loss, measures) of the tiny metacontroller's loss at init, on one batch, with `train`
    overrides; gate_bias: beta = 1 at t = 0 and sigmoid(gate_bias) after."""
    from irl.discovery import Discoverer, take

    config = discover_config("tiny")
    config.train.update(train)
    discoverer = Discoverer(config, pretrained)
    method = discoverer.method("metacontroller")
    trainable = method.init(jax.random.key(0))
    if gate_bias is not None:
        switch = trainable["mc"]["switch"]["out"]
        switch["w"], switch["b"] = switch["w"] * 0, switch["b"] * 0 + gate_bias
    base, tokens = take(discoverer.base_params, 0), discoverer.tokens(jax.random.key(1))
    e = discoverer.model.lower(base, tokens.obs, discoverer.layer)
    return method.loss(trainable, base, e, tokens, jax.random.key(2), alpha, alpha * config.train.gate_entropy)


def test_kl_by_beta_weights_each_steps_kl_by_its_gate(reproduced):
    alpha, pretrained = 0.3, reproduced[0] / "pretrain"
    plain, _ = penalised_loss(pretrained, alpha, gate_bias=-1e4, gate_entropy=0.0)  # beta = 1 at t = 0 only
    by_beta, m = penalised_loss(pretrained, alpha, gate_bias=-1e4, gate_entropy=0.0, kl_by_beta=True)
    assert 0 < float(m["kl_switched"]) < float(m["kl"])  # only the first step's KL counts
    np.testing.assert_allclose(plain - m["action_nll"], alpha * m["kl"], rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(by_beta - m["action_nll"], alpha * m["kl_switched"], rtol=1e-3, atol=1e-7)


def test_the_gate_entropy_term_prices_a_hedging_gate_at_alpha_times_its_weight(reproduced):
    alpha, weight, pretrained = 0.3, 4.0, reproduced[0] / "pretrain"
    loss, m = penalised_loss(pretrained, alpha, gate_bias=-1.0, gate_entropy=weight)
    # beta = sigmoid(-1) after t = 0: every later step pays H(0.27) = 0.58 nats
    assert 0.4 < float(m["gate_entropy"]) < 0.59
    np.testing.assert_allclose(loss - m["action_nll"], alpha * (m["kl"] + weight * m["gate_entropy"]), rtol=1e-3)
    _, m = penalised_loss(pretrained, alpha, gate_bias=-1e4, gate_entropy=weight)
    assert float(m["gate_entropy"]) < 1e-4  # a gate at 0 or 1 pays nothing


def test_the_code_oracle_check_runs_on_supervised_controllers(reproduced):
    """experiments/code_oracle.py's check: fitted codes through a supervised controllers'
    hypernetwork, beside its own one-hot codes."""
    from experiments.code_oracle import supervised_check
    from experiments.configs.grid import analysis_config

    from irl.pretraining import load_pretrained

    pretrainer, params = load_pretrained(reproduced[0] / "pretrain")
    check = supervised_check(pretrainer, params, analysis_config("tiny"), discover_config("tiny").eval.code_oracle,
                             jax.random.key(0))
    assert 0.0 <= check["one_hot_codes_success"] <= 1.0 and 0.0 <= check["fitted_codes"]["success"] <= 1.0
    assert check["layer"] == pretrainer.model.n_layers // 2
    # the upper bound: one code per position of the post-training task's six subgoals
    from irl.discovery import load_discovered
    from irl.stages.discover import discovered_code_oracle

    # (fitted from two draws of the prior: the best one's numbers, and each one's)
    oracle = discover_config("tiny").eval.code_oracle
    oracle.restarts = 2
    bound = discovered_code_oracle(load_discovered(reproduced[0] / "discover", "metacontroller"), pretrainer,
                                   jax.random.key(1), oracle, fit_on="post")
    assert bound["fit_on"] == "post" and len(bound["code_norms"]) == 6 and 0.0 <= bound["success"] <= 1.0
    fits = bound["by_restart"]
    assert bound["restarts"] == len(fits) == 2 and fits[0]["code_norms"] != fits[1]["code_norms"]
    assert bound["success"] == max(f["success"] for f in fits) == fits[bound["best_restart"]]["success"]
    assert bound["code_norms"] == fits[bound["best_restart"]]["code_norms"]
