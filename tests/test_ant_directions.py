"""The ant expert's grid-level guidance: path directions, their one-hot features and the reward."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from irl.envs import grid_paths
from irl.envs.ant_pinpad import CONTROL_DT, FRAME_SKIP, ant_model
from irl.experts.ant_directions import (direction_features, direction_reward, metres_to_go, path_directions,
                                        path_progress_reward)
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


def at(state, cell, offset=(0.0, 0.0)):
    return place(state, cell, offset=offset).physics.qpos[:2]


def test_metres_to_go_runs_to_the_next_cells_centre_then_a_cell_per_move():
    assert float(metres_to_go(STATE, at(STATE, (1, 0)))) == 2.0  # one move up: to (0, 0)'s centre
    assert np.isclose(float(metres_to_go(STATE, at(STATE, (2, 0), (0.6, 0.0)))), np.hypot(0.6, 2.0) + 2.0)
    assert float(metres_to_go(STATE, at(STATE, (0, 0), (0.9, 0.9)))) == 0.0  # on the colour sought
    assert np.isnan(float(metres_to_go(STATE, jnp.array([-4.5, 0.0]))))  # off the grid


def test_path_progress_pays_the_speed_towards_the_path_and_the_rest_of_the_way_on_a_visit():
    def step(cell_from, cell_to, offset_from=(0.0, 0.0), offset_to=(0.0, 0.0), failed=False):
        return float(path_progress_reward(place(STATE, cell_from, offset=offset_from),
                                          place(STATE, cell_to, offset=offset_to), jnp.array(failed)))

    assert np.isclose(ant_model()[0].opt.timestep * FRAME_SKIP, CONTROL_DT)
    # 0.1 m up (towards (0, 0)) in one control step of 0.05 s: 2 m/s
    assert np.isclose(step((1, 0), (1, 0), offset_to=(0.0, -0.1)), 2.0, atol=1e-5)
    assert np.isclose(step((1, 0), (1, 0), offset_to=(0.1, 0.0)), -(np.hypot(0.1, 2.0) - 2.0) / CONTROL_DT, atol=1e-4)
    assert np.isclose(step((1, 0), (0, 0), offset_from=(0.0, -0.95), offset_to=(0.0, 0.95)), 1.05 / CONTROL_DT,
                      atol=1e-4)  # the visit: paid the rest of the way
    assert step((1, 0), (1, 0), offset_to=(0.0, -0.1), failed=True) == 0.0


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)]),
                          st.floats(-0.99, 0.99), st.floats(-0.99, 0.99)), min_size=2, max_size=6))
def test_path_progress_earns_nothing_over_a_loop(points):
    """A difference of potentials: any walk that comes back where it started sums to zero."""
    states = [place(STATE, cell, offset=(dx, dy)) for cell, dx, dy in points]
    states.append(states[0])
    no = jnp.array(False)
    total = sum(float(path_progress_reward(a, b, no)) for a, b in zip(states[:-1], states[1:]))
    assert abs(total) < 1e-2
