import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ENV, PRETRAIN

from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS, OBS_SIZE
from irl.models import encoders


def observe(cells):
    """One-hot observation with channel c's object at cells[c] = (row, col)."""
    obs = np.zeros((GRID_SIZE, GRID_SIZE, N_CHANNELS), np.uint8)
    for channel, (r, c) in enumerate(cells):
        obs[r, c, channel] = 1
    return obs.reshape(-1)


def test_object_cells_reads_every_channel():
    obs, _ = ENV.reset(jax.random.key(3), PRETRAIN)
    _, state = ENV.reset(jax.random.key(3), PRETRAIN)
    cells = np.asarray(encoders.object_cells(obs))
    np.testing.assert_array_equal(cells[:8], state.colors)
    np.testing.assert_array_equal(cells[8:12], state.walls)
    np.testing.assert_array_equal(cells[12], state.agent)


def test_agent_relative_is_the_linear_map_of_the_egocentric_one_hot():
    """The gather implementation equals an explicit one-hot (offset, agent row, agent col)
    feature vector times a weight matrix built from the same tables."""
    params = {"embed": encoders.init_embed(jax.random.key(0), "agent_relative", OBS_SIZE, 8, 1.0)}
    p = params["embed"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        flat = rng.choice(GRID_SIZE * GRID_SIZE, N_CHANNELS, replace=False)
        cells = [(f // GRID_SIZE, f % GRID_SIZE) for f in flat]
        agent = cells[-1]
        expected = np.asarray(p["b"] + p["row"][agent[0]] + p["col"][agent[1]])
        for channel, (r, c) in enumerate(cells[:-1]):
            kind = min(channel, 8)
            expected = expected + np.asarray(p["offsets"][kind, r - agent[0] + 6, c - agent[1] + 6])
        got = encoders.embed(params, jnp.asarray(observe(cells)), "agent_relative")
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_agent_relative_depends_only_on_offsets_and_the_agent_cell():
    """Swapping two walls, or moving everything but keeping offsets and agent row/col contributions
    equal, leaves the embedding unchanged; moving one colour changes it."""
    params = {"embed": encoders.init_embed(jax.random.key(1), "agent_relative", OBS_SIZE, 16, 1.0)}
    cells = [(0, c) for c in range(7)] + [(1, 6), (6, 0), (6, 1), (6, 2), (6, 3), (3, 3)]
    swapped = cells[:8] + [cells[9], cells[8]] + cells[10:]
    moved = list(cells)
    moved[0] = (2, 0)
    e = lambda cs: encoders.embed(params, jnp.asarray(observe(cs)), "agent_relative")
    np.testing.assert_allclose(e(cells), e(swapped), atol=1e-6)
    assert not np.allclose(e(cells), e(moved))


def test_unknown_encoder_is_rejected():
    with pytest.raises(ValueError, match="encoder"):
        encoders.check_encoder("convolutional", OBS_SIZE)
    with pytest.raises(ValueError, match="637"):
        encoders.check_encoder("agent_relative", 20)
