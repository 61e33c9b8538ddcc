"""The injection analysis' bookkeeping: colour entries, colour codes, and the paired rates."""

import jax.numpy as jnp
import numpy as np
from test_ant_pinpad import scripted

from experiments.configs import ant
from irl.analysis import injection
from irl.envs import tasks


def test_entering_a_colour_cell_is_seen_and_staying_or_plain_cells_are_not():
    state, _ = scripted(colors=((0, 0), (0, 1), (0, 2), (0, 3)), start=(1, 1))
    on_colour_2 = state.replace(cell=jnp.array([0, 2]))
    assert int(injection.entered_colour(state, on_colour_2)) == 2
    assert int(injection.entered_colour(on_colour_2, on_colour_2)) == -1  # standing on it
    assert int(injection.entered_colour(state, state.replace(cell=jnp.array([2, 2])))) == -1  # a plain cell


def episodes(entered, z=None, alive=None):
    entered = np.asarray(entered)
    z = np.zeros(entered.shape + (2,)) if z is None else z
    alive = np.ones(entered.shape, bool) if alive is None else alive
    return injection.CodedEpisodes(entered=entered, z=z, alive=alive, xy=None, final=None)


def test_colour_codes_come_from_episodes_that_enter_exactly_one_colour():
    entered = np.full((3, 4), -1)
    entered[0, 2] = 1  # one colour: kept
    entered[1, 1] = 1  # one colour: kept
    entered[2, 0], entered[2, 3] = 2, 3  # two colours: dropped
    z = np.zeros((3, 4, 2))
    z[0, 2], z[1, 1], z[2, 0] = [1.0, 0.0], [3.0, 2.0], [9.0, 9.0]
    codes, counts = injection.colour_codes(episodes(entered, z))
    assert counts.tolist() == [0, 2, 0, 0]
    np.testing.assert_allclose(codes[1], [2.0, 1.0])
    assert np.all(np.isnan(codes[[0, 2, 3]]))


def test_rates_pair_the_same_episodes_with_and_without_injection():
    plain = episodes([[-1, -1, -1, -1], [-1, 0, -1, -1], [-1, -1, -1, 0], [-1, -1, -1, -1]])
    injected = episodes([[-1, -1, 0, -1], [-1, 0, -1, -1], [-1, -1, 0, -1], [-1, -1, -1, -1]])
    # episode 1 entered colour 0 before the switch at step 2: not eligible
    rates = injection.reach_after_step(plain, injected, colour=0, step=2)
    assert rates == {"episodes": 3, "without_injection": 1 / 3, "with_injection": 2 / 3}
    plain = episodes([[0, -1, -1, -1], [-1, 0, -1, 1], [-1, -1, -1, -1]])
    injected = episodes([[0, -1, 1, -1], [-1, 0, 1, -1], [-1, -1, -1, 1]])  # episode 2 never reached 0
    rates = injection.reach_after_colour(plain, injected, first=0, then=1)
    assert rates == {"episodes": 2, "without_injection": 0.5, "with_injection": 1.0}


def test_an_episode_that_entering_the_first_colour_ends_is_not_counted_for_the_transition():
    # episode 0 ends on entering colour 0 (its last step taken): the code would be forced at
    # the step after, which never comes; episode 1 enters colour 0 on the very last step
    alive = np.array([[True, True, False, False], [True, True, True, True], [True, True, True, True]])
    plain = episodes([[-1, 0, -1, -1], [-1, -1, -1, 0], [0, -1, -1, -1]], alive=alive)
    injected = episodes([[-1, 0, -1, -1], [-1, -1, -1, 0], [0, -1, 1, -1]], alive=alive)
    rates = injection.reach_after_colour(plain, injected, first=0, then=1)
    assert rates == {"episodes": 1, "without_injection": 0.0, "with_injection": 1.0}


def test_the_unseen_transition_is_made_by_no_pretraining_task():
    first, then = ant.inject_config("small").inject.unseen_transition
    for task in tasks.ANT_PRETRAIN_TASKS:
        colours = [int(c) for c in task.split("-")]
        assert (first, then) not in zip(colours, colours[1:])
