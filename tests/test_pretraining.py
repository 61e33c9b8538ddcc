
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.configs.grid import pretrain_config
from irl import training
from irl.pretraining import Pretrainer, grid_obs_nll, make_optimizer, validate


def tiny(**train):
    config = pretrain_config("tiny")
    config.train.update(steps=20, chunk_steps=10, eval_every=0, **train)
    return config


def test_paper_preset_is_the_papers_table():
    """SPEC.md section 4 / Table A4 and A16, number by number."""
    c = pretrain_config("paper")
    assert c.model.to_dict() == dict(arch="transformer", n_layers=6, width=256, n_heads=4, head_dim=64, mlp_width=512,
                                     n_buckets=32, max_distance=128, init_scale=0.1, encoder="linear")
    assert (c.data.batch, c.data.eps, c.data.max_episode_steps, c.data.pack_length) == (1024, 0.0, 100, 0)
    assert c.train.steps == 256_000 and c.seeds == 10
    assert (c.optim.lr, c.optim.weight_decay, c.optim.b1, c.optim.b2) == (3e-4, 0.03, 0.9, 0.999)
    assert c.optim.schedule == "constant" and c.optim.warmup_steps == 0 and c.optim.grad_clip == 0.0
    assert c.loss.obs_coef in (0.0, 0.01)


@pytest.mark.parametrize("field, value, message", [
    ("data.batch", 0, "data.batch"),
    ("data.eps", 1.5, "data.eps"),
    ("data.labels", "noisy", "data.labels"),
    ("optim.schedule", "linear", "schedule"),
    ("train.chunk_steps", 7, "multiple"),
    ("model.encoder", "conv", "encoder"),
    ("model.n_layers", 0, "n_layers"),
])
def test_bad_configs_fail_before_compute(field, value, message):
    config = tiny()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_optimal_labels_train_on_the_clean_experts_moves():
    config = tiny()
    config.data.update(eps=0.5, labels="optimal")
    key = jax.random.key(0)
    optimal = Pretrainer(config).tokens(key)
    config.data.labels = "taken"
    taken = Pretrainer(config).tokens(key)
    real = np.asarray(taken.mask)
    # the same noisy episodes (same observations), labelled differently where noise fired
    assert (np.asarray(optimal.obs) == np.asarray(taken.obs)).all() and (np.asarray(optimal.mask) == real).all()
    assert (np.asarray(optimal.actions)[real] != np.asarray(taken.actions)[real]).any()


@pytest.mark.parametrize("decay_biases", [True, False])
def test_weight_decay_of_biases_and_gains_follows_the_config(decay_biases):
    optim = pretrain_config("tiny").optim
    optim.update(weight_decay=0.5, grad_clip=0.0, schedule="constant", warmup_steps=0, decay_biases=decay_biases)
    params = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}, "ln": {"scale": jnp.ones(3), "bias": jnp.ones(3)}}
    optimizer = make_optimizer(optim, total_steps=10)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zero, optimizer.init(params), params)  # no gradient: decay alone
    moved = jax.tree.map(lambda u: bool((u != 0).any()), updates)
    assert moved["layer"]["w"]
    assert moved["layer"]["b"] == moved["ln"]["scale"] == moved["ln"]["bias"] == decay_biases


def test_grid_obs_nll_is_zero_for_a_certain_prediction_and_log49_for_uniform():
    obs = np.zeros((49, 13), np.uint8)
    obs[np.arange(13) * 3, np.arange(13)] = 1
    obs = jnp.asarray(obs.reshape(-1))
    certain = jnp.where(obs > 0, 100.0, -100.0)
    assert float(grid_obs_nll(certain, obs)) < 1e-6
    np.testing.assert_allclose(grid_obs_nll(jnp.zeros(637), obs), 13 * np.log(49), rtol=1e-6)


def _params_of(workdir):
    manager = ocp.CheckpointManager(workdir / "checkpoints")
    restored = manager.restore(manager.latest_step())
    manager.close()
    return restored["params"], manager.latest_step()


def test_resume_after_interruption_gives_the_uninterrupted_parameters(tmp_path):
    config = tiny()
    trainer = Pretrainer(config)
    chunk = trainer.chunk_fn()
    whole = training.run(tmp_path / "whole", trainer.init_state, chunk, 20, 10, progress=False)

    calls = []

    def interrupted(state):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return chunk(state)

    with pytest.raises(KeyboardInterrupt):
        training.run(tmp_path / "resumed", trainer.init_state, interrupted, 20, 10, progress=False)
    assert _params_of(tmp_path / "resumed")[1] == 10
    resumed = training.run(tmp_path / "resumed", trainer.init_state, chunk, 20, 10, progress=False)
    assert int(resumed["step"]) == 20
    for a, b in zip(jax.tree.leaves(whole["params"]), jax.tree.leaves(resumed["params"])):
        np.testing.assert_array_equal(a, b)
    steps = [row["step"] for row in training.read_metrics(tmp_path / "resumed")]
    assert steps == [10, 20]


def test_a_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Pretrainer(tiny())
    chunk = trainer.chunk_fn()
    calls = []

    def poisoned(state):
        state, metrics = chunk(state)
        calls.append(1)
        if len(calls) == 2:
            metrics = dict(metrics, loss=metrics["loss"].at[3, 1].set(jnp.nan))
        return state, metrics

    with pytest.raises(FloatingPointError, match=r"step 14 \(seed 1\).*step 10\) is intact"):
        training.run(tmp_path, trainer.init_state, poisoned, 30, 10, progress=False)
    params, step = _params_of(tmp_path)
    assert step == 10


def test_same_seed_same_numbers_and_seeds_differ():
    trainer = Pretrainer(tiny())
    chunk = trainer.chunk_fn()
    a = chunk(trainer.init_state())[1]["loss"]
    b = chunk(trainer.init_state())[1]["loss"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, 0], a[:, 1])  # two seeds: different models and data


def test_the_shipped_small_model_is_the_small_presets_trained_to_the_end():
    """`make reproduce` reuses checkpoints/grid-small-10k-pretrain copied in as its pretraining
    stage (README): that is only the preset's result if the configs agree and training ran out."""
    import json
    from pathlib import Path

    from irl.pretraining import load_pretrained

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "grid-small-10k-pretrain"
    config = pretrain_config("small")
    assert json.loads((shipped / "config.json").read_text()) == config.to_dict()
    results = json.loads((shipped / "results.json").read_text())
    assert results["steps"] == config.train.steps
    _, params = load_pretrained(shipped)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
