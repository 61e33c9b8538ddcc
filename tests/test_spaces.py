"""The heads' likelihoods: softmax moves, Gaussian torques with learned variance, the grid's
object categoricals and the ant's unit-variance observation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irl import spaces

floats = st.floats(-3.0, 3.0, allow_nan=False, width=32)


@settings(deadline=None, max_examples=30)
@given(st.lists(floats, min_size=6, max_size=6), st.lists(floats, min_size=3, max_size=3))
def test_gaussian_nll_is_the_diagonal_normal_density(out, action):
    space = spaces.GaussianActions(3)
    out, action = np.array(out, np.float32), np.array(action, np.float32)
    mean, log_std = out[:3], np.clip(out[3:], *spaces.LOG_STD_RANGE)
    expected = -sum(-0.5 * ((a - m) / math.exp(s)) ** 2 - s - 0.5 * math.log(2 * math.pi)
                    for a, m, s in zip(action, mean, log_std))
    np.testing.assert_allclose(float(space.nll(jnp.asarray(out), jnp.asarray(action))), expected, rtol=1e-4, atol=1e-4)


def test_gaussian_sampling_mode_and_clipping():
    space = spaces.GaussianActions(2)
    out = jnp.array([0.3, 5.0, math.log(0.1), math.log(0.1)])
    samples = jax.vmap(lambda k: space.sample(k, out))(jax.random.split(jax.random.key(0), 4000))
    assert np.all(np.abs(np.asarray(samples)) <= 1.0)
    assert abs(float(samples[:, 0].mean()) - 0.3) < 0.01 and abs(float(samples[:, 0].std()) - 0.1) < 0.01
    assert np.all(np.asarray(samples[:, 1]) == 1.0)  # a mean beyond the torque range is clipped
    np.testing.assert_allclose(space.mode(out), [0.3, 1.0])
    assert space.head_size == 4 and float(space.agreement(out, jnp.array([0.3, 1.0]))) == 0.0


def test_categorical_matches_log_softmax():
    space = spaces.CategoricalActions(4)
    logits = jnp.array([[1.0, 2.0, 0.5, -1.0]])
    actions = jnp.array([1])
    np.testing.assert_allclose(space.nll(logits, actions), -jax.nn.log_softmax(logits)[:, 1], rtol=1e-6)
    assert float(space.agreement(logits, actions)[0]) == 1.0 and int(space.mode(logits)[0]) == 1


def test_gaussian_obs_is_half_the_squared_error():
    assert float(spaces.GaussianObs().nll(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))) == 2.5


def test_spaces_per_environment():
    assert spaces.for_env("grid_pinpad")[0].head_size == 4 and spaces.for_env("ant_pinpad")[0].head_size == 16
    with pytest.raises(ValueError, match="no spaces"):
        spaces.for_env("chess")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_the_policy_nll_is_the_expected_nll_of_an_action_drawn_from_the_policy(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    space = spaces.CategoricalActions()
    out = jax.random.normal(k1, (5, 4)) * 3
    probs = jax.nn.softmax(jax.random.normal(k2, (5, 4)) * 2)
    expected = sum(probs[:, a] * space.nll(out, jnp.full(5, a)) for a in range(4))
    np.testing.assert_allclose(space.policy_nll(out, probs), expected, rtol=1e-5)
    # a one-hot policy is the plain NLL of its action
    np.testing.assert_allclose(space.policy_nll(out, jax.nn.one_hot(jnp.arange(5) % 4, 4)),
                               space.nll(out, jnp.arange(5) % 4), rtol=1e-5)
