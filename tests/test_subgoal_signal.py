"""The information the ant expert's torques carry about the colour it seeks: the Monte Carlo
estimates on Gaussians whose answers are known, the counterfactual target, and a short run."""

import math

import jax
import jax.numpy as jnp
import numpy as np

import irl.envs as envs
from irl.analysis import subgoal_signal
from irl.envs.ant_pinpad import current_subgoal
from irl.experts import ant_expert

KEY = jax.random.key(0)


def test_colours_with_one_torque_distribution_carry_no_information():
    loc, scale = jnp.tile(jnp.linspace(-1, 1, 8), (4, 1)), jnp.full((4, 8), 0.3)
    information, _ = subgoal_signal.information_and_entropy(loc, scale, jnp.int32(2), KEY, 64)
    assert abs(float(information)) < 1e-5


def test_colours_with_disjoint_torques_carry_all_of_log_four():
    loc, scale = 10.0 * jnp.eye(4, 8), jnp.full((4, 8), 0.1)
    information, _ = subgoal_signal.information_and_entropy(loc, scale, jnp.int32(0), KEY, 64)
    assert math.isclose(float(information), math.log(4), abs_tol=1e-4)


def test_entropy_of_narrow_torques_at_zero_is_the_gaussians():
    sigma = 1e-3  # tanh is the identity there: the squashed entropy is the Gaussian's
    loc, scale = jnp.zeros((4, 8)), jnp.full((4, 8), sigma)
    _, entropy = subgoal_signal.information_and_entropy(loc, scale, jnp.int32(1), KEY, 4096)
    # the estimate's standard error: sqrt(8 / 2 / 4096) = 0.03 nats
    assert math.isclose(float(entropy), 8 * 0.5 * math.log(2 * math.pi * math.e * sigma**2), abs_tol=0.1)


def test_the_counterfactual_target_is_the_colour_sought():
    from test_ant_pinpad import scripted

    state, _ = scripted(task="0-1-2")
    for progress in (0, 1, 2):
        moved = state.replace(progress=jnp.int32(progress))
        for colour in range(4):
            assert int(current_subgoal(subgoal_signal.with_target(moved, jnp.int32(colour)))) == colour
        assert int(current_subgoal(moved)) == progress  # the state itself unchanged


def test_a_short_run_measures_within_bounds():
    networks = ant_expert.ExpertNetworks((8,), (8,))
    expert = ant_expert.AntExpert(networks, ant_expert.initial_params(networks, KEY), {"steps": 0})
    world, params = envs.make("ant_pinpad", time_limit=3)
    out = subgoal_signal.measure(expert, world, params, KEY, n_episodes=2, samples=4)
    assert 0 < out["steps"] <= 6 and out["episodes"] == 2
    assert -0.05 < out["information_nats_per_step"] <= math.log(4) + 1e-4
    assert np.isfinite(out["entropy_nats_per_step"])


def test_the_squashing_jacobian_is_the_derivative_of_tanh():
    u = jnp.linspace(-3, 3, 24).reshape(3, 8)
    np.testing.assert_allclose(subgoal_signal.tanh_log_det(u), np.log(1 - np.tanh(np.asarray(u)) ** 2).sum(-1),
                               rtol=1e-5)
