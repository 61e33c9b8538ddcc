import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ENV, POST, PRETRAIN, reset

from irl.envs import AutoResetVec
from irl.envs.wrappers import masked_update


@pytest.mark.parametrize("capacity", [2, 5, 16])  # several rounds, two rounds, one round
def test_masked_update_replaces_exactly_the_set_rows(capacity):
    mask = jnp.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1], bool)  # 6 rows set
    fn = lambda i: {"a": i * 10, "b": jnp.stack([i, -i]).astype(jnp.float32)}
    base = {"a": -jnp.ones(16, jnp.int32), "b": jnp.full((16, 2), 0.5)}
    out = jax.jit(lambda m: masked_update(fn, m, capacity, base))(mask)
    full = jax.vmap(fn)(jnp.arange(16))
    for k in out:
        expected = np.where(np.asarray(mask).reshape((16,) + (1,) * (full[k].ndim - 1)), full[k], base[k])
        assert (np.asarray(out[k]) == expected).all()
    none = jax.jit(lambda m: masked_update(fn, m, capacity, base))(jnp.zeros(16, bool))
    assert (np.asarray(none["a"]) == -1).all()


def test_reset_from_is_the_first_solvable_attempt_from_there():
    params = POST  # about one layout in five fails for the post-training task
    attempt = jax.jit(ENV.reset_attempt, static_argnums=2)
    key = next(k for k in map(jax.random.key, range(100)) if not bool(attempt(k, params, 0)[2]))
    ok = [bool(attempt(key, params, a)[2]) for a in range(8)]
    reset_from = jax.jit(ENV.reset_from, static_argnums=2)
    for first in (0, 1, ok.index(True) + 1):
        chosen = attempt(key, params, ok.index(True, first))
        obs, state = reset_from(key, params, first)
        assert (np.asarray(obs) == np.asarray(chosen[0])).all()
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state, chosen[1]))
    assert (np.asarray(reset(key, params)[0]) == np.asarray(reset_from(key, params, 0)[0])).all()


class ResetOnly:
    """GridPinpad without `reset_attempt`: an env that AutoResetVec can only `reset` whole."""

    def __init__(self, env):
        self.reset, self.step = env.reset, env.step


@pytest.mark.parametrize("capacity, cascade, plain", [(2, 1, False), (2, 2, False), (32, 3, False), (2, 2, True)])
def test_auto_reset_restarts_exactly_as_env_reset(capacity, cascade, plain):
    """Whatever the capacity and cascade, finished env i restarts as env.reset(fold_in(reset_key, i)),
    with layouts drawn in a cascade or (plain) by whole resets."""
    n, params = 32, PRETRAIN
    vec = AutoResetVec(ResetOnly(ENV) if plain else ENV, n, reset_capacity=capacity, cascade_attempts=cascade)
    obs, state = jax.jit(vec.reset)(jax.random.key(0), params)
    # force some episodes to end: put the agent next to a wrong colour and step onto it
    done_rows = np.arange(n) % 3 == 0
    wrong = (state.task[:, 0] + 1) % 8  # any colour but the task's first fails the episode
    target = state.colors[jnp.arange(n), wrong]
    start = jnp.where(target[:, :1] > 0, target - jnp.array([1, 0]), target + jnp.array([1, 0]))
    action = jnp.where(target[:, 0] > 0, 2, 0)  # down from above, or up from below
    occupied = jnp.any(jnp.all(jnp.concatenate([state.colors, state.walls], 1) == start[:, None], -1), -1)
    forced = jnp.asarray(done_rows) & ~occupied
    state = state.replace(agent=jnp.where(forced[:, None], start, state.agent))
    action = jnp.where(forced, action, 0)
    key = jax.random.key(1)
    obs2, state2, reward, done, info = jax.jit(vec.step)(key, state, action, params)
    assert (np.asarray(done)[np.asarray(forced)]).all()
    reset_key = jax.random.split(key)[1]
    for i in np.where(np.asarray(done))[0]:
        ref_obs, ref_state = reset(jax.random.fold_in(reset_key, i), params)
        assert (np.asarray(obs2[i]) == np.asarray(ref_obs)).all()
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a[i] == b)), state2, ref_state))
        assert (np.asarray(info["final_obs"][i]) != np.asarray(obs2[i])).any()
    for i in np.where(~np.asarray(done))[0]:
        assert int(state2.t[i]) == 1


def test_bad_arguments():
    with pytest.raises(ValueError):
        AutoResetVec(ENV, 0)
    with pytest.raises(ValueError):
        AutoResetVec(ENV, 4, reset_capacity=0)
    with pytest.raises(ValueError):
        AutoResetVec(ENV, 4, cascade_attempts=0)
