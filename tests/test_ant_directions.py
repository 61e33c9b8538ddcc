"""The ant expert's grid-level guidance: path directions, their one-hot features and the reward."""

import jax
import jax.numpy as jnp
import numpy as np

from irl.envs import grid_paths
from irl.experts.ant_directions import direction_features, direction_reward, path_directions
from test_ant_pinpad import place, scripted

# colours 0..3 at (0,0), (0,1), (0,2), (0,3); wall (3,3); task 0-1-2; progress 0: target (0,0)
STATE, _ = scripted(colors=((0, 0), (0, 1), (2, 1), (2, 2)), wall=(1, 1))


def test_every_direction_starts_a_shortest_path_around_walls_and_other_colours():
    directions = np.asarray(jax.jit(path_directions)(STATE))
    blocked = np.asarray(grid_paths.cells_mask(jnp.array([[0, 1], [2, 1], [2, 2], [1, 1]]), 4))
    dist = np.asarray(grid_paths.distance_field(jnp.array([0, 0]), jnp.asarray(blocked)))
    assert directions[0, 0] == -1  # on the target
    for r in range(4):
        for c in range(4):
            d = directions[r, c]
            if dist[r, c] in (0, grid_paths.UNREACHABLE):
                assert d == -1
                continue
            nr, nc = np.array([r, c]) + np.asarray(grid_paths.MOVES[d])
            assert 0 <= nr < 4 and 0 <= nc < 4 and dist[nr, nc] == dist[r, c] - 1
            assert not blocked[nr, nc] or (nr, nc) == (0, 0)
    assert directions[1, 0] == 0  # right below the target: up


def test_features_are_one_hot_per_cell():
    features = np.asarray(direction_features(STATE)).reshape(16, 4)
    assert set(features.sum(-1).tolist()) <= {0.0, 1.0} and features[0].sum() == 0 and features[4, 0] == 1


def test_reward_is_the_velocity_along_the_cells_direction():
    def with_velocity(state, cell, vxy):
        state = place(state, cell)
        return state.replace(physics=state.physics.replace(qvel=state.physics.qvel.at[:2].set(jnp.array(vxy))))

    # cell (1, 0): direction up = row - 1 = towards lower y
    assert float(direction_reward(with_velocity(STATE, (1, 0), (0.0, -2.0)))) == 2.0
    assert float(direction_reward(with_velocity(STATE, (1, 0), (0.0, 1.0)))) == -1.0
    assert float(direction_reward(with_velocity(STATE, (1, 0), (3.0, 0.0)))) == 0.0
    assert float(direction_reward(with_velocity(STATE, (0, 0), (0.0, -2.0)))) == 0.0  # on the target
