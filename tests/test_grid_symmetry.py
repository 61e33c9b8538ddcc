"""The board's rotations and reflections: observations, dynamics and the expert all commute
with them (property tests), and a transformed token batch is the transformed episode."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import ENV, PRETRAIN, reset, step
from hypothesis import given, settings
from hypothesis import strategies as st

from irl.data import episode_tokens, make_expert_data
from irl.envs import grid_symmetry as sym
from irl.envs.grid_pinpad import observation
from irl.experts.grid_expert import grid_expert_step

seeds = st.integers(0, 2**31 - 1)
elements = st.integers(0, sym.N_SYMMETRIES - 1)


@jax.jit
def transform_state(state, g):
    return state.replace(agent=sym.transform_cells(state.agent, g), colors=sym.transform_cells(state.colors, g),
                         walls=sym.transform_cells(state.walls, g))


# compiled once: the property test runs these hundreds of times
observation = jax.jit(observation)
grid_expert_step = jax.jit(grid_expert_step)
transform_obs = jax.jit(sym.transform_obs)


def test_the_group_acts_on_moves_and_cells_as_a_group():
    assert sorted(map(tuple, sym.ACTION_MAPS.tolist())) == sorted(set(map(tuple, sym.ACTION_MAPS.tolist())))
    assert (sym.ACTION_MAPS[0] == np.arange(4)).all() and (sym.SOURCE_CELLS[0] == np.arange(49)).all()
    assert list(sym.ACTION_MAPS[1]) == [3, 0, 1, 2]  # a quarter turn: up becomes left, right becomes up
    for maps in sym.ACTION_MAPS:
        assert sorted(maps) == [0, 1, 2, 3]
        assert maps[0] in ((maps[2] + 2) % 4, (maps[2] - 2) % 4)  # opposite moves stay opposite


@settings(max_examples=30, deadline=None)
@given(seeds, elements, st.lists(st.integers(0, 3), min_size=1, max_size=12))
def test_observation_dynamics_and_expert_commute_with_every_symmetry(seed, g, actions):
    _, state = reset(jax.random.key(seed), PRETRAIN)
    moved = transform_state(state, g)
    g_batch = jnp.array([g])
    for a in actions:
        seen_moved = transform_obs(observation(state)[None, None], g_batch)[0, 0]
        np.testing.assert_array_equal(observation(moved), seen_moved)
        _, _, policy = grid_expert_step(jax.random.key(0), state)
        _, _, moved_policy = grid_expert_step(jax.random.key(0), moved)
        np.testing.assert_allclose(np.asarray(moved_policy)[sym.ACTION_MAPS[g]], policy, atol=1e-6)
        _, state, reward, done, _ = step(jax.random.key(0), state, jnp.int32(a), PRETRAIN)
        moved_action = jnp.int32(sym.ACTION_MAPS[g][a])
        _, after, moved_reward, moved_done, _ = step(jax.random.key(0), moved, moved_action, PRETRAIN)
        moved = transform_state(state, g)
        np.testing.assert_array_equal(after.agent, moved.agent)
        outcome = (int(state.progress), float(reward), bool(done))
        assert (int(after.progress), float(moved_reward), bool(moved_done)) == outcome
        if bool(done):
            break


def test_transformed_tokens_are_the_transformed_episodes():
    data = make_expert_data(ENV, PRETRAIN, 4, eps=0.0, max_steps=30)(jax.random.key(3))
    tokens = episode_tokens(data)
    moved = sym.transform_tokens(tokens, jax.random.key(4))
    g = np.asarray(jax.random.randint(jax.random.key(4), (4,), 1, sym.N_SYMMETRIES))
    for b in range(4):
        np.testing.assert_array_equal(moved.actions[b], sym.ACTION_MAPS[g[b]][np.asarray(tokens.actions[b])])
        np.testing.assert_allclose(np.asarray(moved.policy[b])[:, sym.ACTION_MAPS[g[b]]], tokens.policy[b])
        np.testing.assert_array_equal(moved.obs[b:b + 1], sym.transform_obs(tokens.obs[b:b + 1], jnp.array([g[b]])))
    np.testing.assert_array_equal(moved.mask, tokens.mask)
    # the agent's cell, read from the moved observations, is the agent's cell moved
    agent = lambda obs: np.argwhere(np.asarray(obs).reshape(7, 7, 13)[:, :, 12])[0]
    for b in range(4):
        moved_agent = sym.transform_cells(jnp.asarray(agent(tokens.obs[b, 0])), g[b])
        np.testing.assert_array_equal(agent(moved.obs[b, 0]), moved_agent)
