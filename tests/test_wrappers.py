import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ENV, PRETRAIN, reset

from irl.envs import AutoResetVec
from irl.envs.wrappers import masked_map


@pytest.mark.parametrize("capacity", [2, 5, 16])
def test_masked_map_matches_vmap_on_set_rows(capacity):
    mask = jnp.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1], bool)  # 6 rows set
    fn = lambda i: {"a": i * 10, "b": jnp.stack([i, -i]).astype(jnp.float32)}
    out = jax.jit(lambda m: masked_map(fn, m, capacity))(mask)
    full = jax.vmap(fn)(jnp.arange(16))
    for k in out:
        expected = np.where(np.asarray(mask).reshape((16,) + (1,) * (full[k].ndim - 1)), full[k], 0)
        assert (np.asarray(out[k]) == expected).all()
    none = jax.jit(lambda m: masked_map(fn, m, capacity))(jnp.zeros(16, bool))
    assert (np.asarray(none["a"]) == 0).all()


@pytest.mark.parametrize("capacity", [2, 32])  # fewer rows than finished episodes (all rows run), and enough
def test_auto_reset_restarts_exactly_as_env_reset(capacity):
    """Whatever the capacity, finished env i restarts as env.reset(fold_in(reset_key, i))."""
    n, params = 32, PRETRAIN
    vec = AutoResetVec(ENV, n, reset_capacity=capacity)
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
