import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl.control import linear
from irl.models.base import make_base_model

MODEL = make_base_model("transformer", obs_size=20, n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48,
                        n_buckets=8, max_distance=16, init_scale=1.0)


@pytest.mark.parametrize("rank", [4, None])
def test_factored_controller_equals_dense_e_plus_u_e(rank):
    cfg = linear.ControllerConfig(width=32, code_dim=4, rank=rank, init_scale=1.0)
    params = linear.init(jax.random.key(0), cfg)
    z = jax.random.normal(jax.random.key(1), (3, 5, 4))
    e = jax.random.normal(jax.random.key(2), (3, 5, 32))
    a, b = linear.factors(params, z, cfg)
    u = linear.dense(a, b)
    assert u.shape == (3, 5, 32, 32)
    np.testing.assert_allclose(linear.apply(e, a, b), e + jnp.einsum("...ij,...j->...i", u, e), atol=1e-5)
    if rank is not None:
        assert np.linalg.matrix_rank(np.asarray(u[0, 0])) <= rank


def test_a_zero_code_leaves_the_model_output_unchanged():
    cfg = linear.ControllerConfig(width=32, code_dim=4, rank=4, init_scale=1.0)
    ctrl = linear.init(jax.random.key(0), cfg)
    base = MODEL.init(jax.random.key(1))
    obs = jax.random.bernoulli(jax.random.key(2), 0.3, (2, 6, 20)).astype(jnp.uint8)
    a, b = linear.factors(ctrl, jnp.zeros((2, 6, 4)), cfg)
    e = MODEL.lower(base, obs, 1)
    controlled = MODEL.upper(base, linear.apply(e, a, b), 1)
    for x, y in zip(controlled, MODEL.forward(base, obs)):
        np.testing.assert_allclose(x, y, atol=1e-6)
    # and a non-zero code does change it
    a, b = linear.factors(ctrl, jnp.ones((2, 6, 4)), cfg)
    assert not np.allclose(MODEL.upper(base, linear.apply(e, a, b), 1)[0], MODEL.forward(base, obs)[0])


@pytest.mark.parametrize("rank", [4, None])
def test_a_code_and_its_negative_are_different_controllers_first_order_near_zero(rank):
    # with both factors odd in z (a bias-free hypernetwork), U(-z) = U(z) and U ~ |z|^2 near 0:
    # codes from an N(0, I) prior would lose half their room and steer weakly
    cfg = linear.ControllerConfig(width=32, code_dim=8, rank=rank, init_scale=1.0)
    params = linear.init(jax.random.key(0), cfg)
    z = jax.random.normal(jax.random.key(1), (16, 8))
    u = lambda codes: np.asarray(linear.dense(*linear.factors(params, codes, cfg)))
    size = lambda x: np.linalg.norm(x.reshape(len(x), -1), axis=-1)
    assert (size(u(z) - u(-z)) > 0.5 * size(u(z))).all()
    np.testing.assert_allclose(size(u(2e-3 * z)) / size(u(1e-3 * z)), 2.0, rtol=0.02)


def test_bad_rank_is_rejected():
    with pytest.raises(ValueError, match="rank"):
        linear.ControllerConfig(width=8, code_dim=4, rank=9)


def test_an_additive_controller_pushes_every_residual_alike_and_a_zero_code_not_at_all():
    cfg = linear.ControllerConfig(width=32, code_dim=4, form="additive", init_scale=1.0)
    params = linear.init(jax.random.key(0), cfg)
    z = jax.random.normal(jax.random.key(1), (3, 5, 4))
    e1, e2 = jax.random.normal(jax.random.key(2), (2, 3, 5, 32))
    a, b = linear.factors(params, z, cfg)
    assert a.shape == (3, 5, 32) and b is None
    push = linear.apply(e1, a, b, cfg.form) - e1
    np.testing.assert_allclose(linear.apply(e2, a, b, cfg.form) - e2, push, atol=1e-5)  # whatever the stream holds
    assert (np.linalg.norm(push, axis=-1) > 1e-3).all()
    zero, _ = linear.factors(params, jnp.zeros((3, 5, 4)), cfg)
    np.testing.assert_array_equal(linear.apply(e1, zero, None, cfg.form), e1)
    with pytest.raises(ValueError, match="form"):
        linear.ControllerConfig(width=8, code_dim=4, form="affine")


def test_one_full_controller_applied_to_as_many_residuals_as_its_width_is_not_taken_for_a_push():
    """The form, not the shapes, tells a push from a full U: U [D, D] over D residuals [D, D]
    has a push's shape (the rank of e), and was once added to them."""
    cfg = linear.ControllerConfig(width=6, code_dim=3, rank=None, init_scale=1.0)
    u, b = linear.factors(linear.init(jax.random.key(0), cfg), jnp.ones(3), cfg)
    e = jax.random.normal(jax.random.key(1), (6, 6))
    np.testing.assert_allclose(linear.apply(e, u, b, cfg.form), e + e @ u.T, atol=1e-5)


def test_closed_loop_split_at_any_layer_with_an_identity_steer_matches_the_plain_rollout():
    from helpers import ENV, PRETRAIN

    from irl.rollout import run_base_model

    model = make_base_model("transformer", n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48, n_buckets=8,
                            max_distance=32, encoder="agent_relative")
    params = model.init(jax.random.key(0))
    run = jax.jit(run_base_model, static_argnums=(0, 2, 5), static_argnames=("layer", "steer", "max_steps"))
    plain = run(model, params, ENV, PRETRAIN, jax.random.key(1), 16, max_steps=20)
    split = run(model, params, ENV, PRETRAIN, jax.random.key(1), 16, max_steps=20, layer=1, steer=lambda e, s: e)
    np.testing.assert_array_equal(plain.length, split.length)
    np.testing.assert_array_equal(plain.progress, split.progress)


def test_subgoal_completion_counts_the_failed_attempt():
    from irl.stages.control import subgoal_completion

    # one success (6 of 6), one failure after 2 subgoals (2 of 3 attempted), one at the start (0 of 1)
    progress = np.array([12, 5, 0])
    success = np.array([True, False, False])
    assert subgoal_completion(progress, success, 6) == (6 + 2 + 0) / (6 + 3 + 1)


def test_controller_loss_on_packed_rows_equals_the_loss_on_one_episode_per_row():
    """Controllers train on episodes packed as in pretraining; where no episode is cut, the
    loss over the packed rows is the loss over the same episodes one per row."""
    from helpers import ENV, PRETRAIN

    from irl.analysis.supervised_control import controlled_action_nll
    from irl.data import episode_tokens, make_expert_data, pack_episodes

    model = make_base_model("transformer", n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48, n_buckets=8,
                            max_distance=32, encoder="agent_relative")
    base = model.init(jax.random.key(0))
    cfg = linear.ControllerConfig(width=32, code_dim=4, rank=4, init_scale=1.0)
    ctrl = linear.init(jax.random.key(1), cfg)
    episodes = make_expert_data(ENV, PRETRAIN, 6, max_steps=40)(jax.random.key(2))
    assert int(episodes.length.max()) <= 40  # three to a 120-token row: nothing is cut
    one_per_row = controlled_action_nll(model, base, ctrl, cfg, 1, episode_tokens(episodes))
    packed = controlled_action_nll(model, base, ctrl, cfg, 1, pack_episodes(episodes, 2, 120))
    np.testing.assert_allclose(packed, one_per_row, rtol=1e-5)
    # without the episode boundaries the packed rows would read across episodes
    crossed = controlled_action_nll(model, base, ctrl, cfg, 1, pack_episodes(episodes, 2, 120).replace(segments=None))
    assert not np.allclose(crossed[0], one_per_row[0], rtol=1e-5)


def test_a_code_table_through_a_frozen_decoder_gives_that_decoders_controllers():
    from irl.analysis.supervised_control import codes_as_controllers

    decoder_cfg = linear.ControllerConfig(width=32, code_dim=8, rank=4, init_scale=1.0)
    decoder = linear.init(jax.random.key(0), decoder_cfg)
    codes = jax.random.normal(jax.random.key(1), (4, 8))
    table_cfg = linear.ControllerConfig(width=32, code_dim=4, rank=4, init_scale=1.0)
    subgoal = jnp.array([[0, 3, 1], [2, 2, 0]])
    from_table = linear.factors(codes_as_controllers(decoder, codes), jax.nn.one_hot(subgoal, 4), table_cfg)
    direct = linear.factors(decoder, codes[subgoal], decoder_cfg)
    for x, y in zip(from_table, direct):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.mark.parametrize("restarts", [1, 3])
def test_fitted_subgoal_codes_lower_the_loss_and_train_only_the_codes(restarts):
    from helpers import ENV, PRETRAIN

    from irl.analysis.supervised_control import codes_as_controllers, controlled_action_nll, train_subgoal_codes
    from irl.data import episode_tokens, make_expert_data

    model = make_base_model("transformer", n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48, n_buckets=8,
                            max_distance=32, encoder="agent_relative")
    base = model.init(jax.random.key(0))
    decoder_cfg = linear.ControllerConfig(width=32, code_dim=8, rank=4, init_scale=1.0)
    decoder = linear.init(jax.random.key(1), decoder_cfg)
    batch = episode_tokens(make_expert_data(ENV, PRETRAIN, 8, max_steps=40)(jax.random.key(2)))
    codes, history = jax.jit(lambda k: train_subgoal_codes(model, base, decoder, decoder_cfg, lambda _: batch, k, 1,
                                                           steps=30, lr=0.1, restarts=restarts))(jax.random.key(3))
    assert codes.shape == (restarts, 4, 8) and history["nll"].shape == (30, restarts)
    assert np.all(history["nll"][-1] < history["nll"][0] - 1e-3)  # every restart fits
    assert len({round(float(x), 5) for x in history["nll"][0]}) == restarts  # each from its own draw
    # each restart's history is the loss of its own fitted codes through the same, unchanged decoder
    table_cfg = linear.ControllerConfig(width=32, code_dim=4, rank=4)
    for r in range(restarts):
        final, _ = controlled_action_nll(model, base, codes_as_controllers(decoder, codes[r]), table_cfg, 1, batch)
        assert final <= history["nll"][-1, r] + 1e-2
