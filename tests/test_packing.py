import jax
import numpy as np
import pytest
from helpers import ENV, PRETRAIN

from irl.data import episode_tokens, make_expert_data, pack_episodes
from irl.models.base import make_base_model

ROWS, PER_ROW, LENGTH = 4, 3, 72


@pytest.fixture(scope="module")
def episodes():
    return jax.device_get(make_expert_data(ENV, PRETRAIN, ROWS * PER_ROW, max_steps=60)(jax.random.key(0)))


def test_packed_rows_are_the_episodes_end_to_end(episodes):
    packed = jax.device_get(pack_episodes(episodes, ROWS, LENGTH))
    for r in range(ROWS):
        position = 0
        for k in range(PER_ROW):
            i = r * PER_ROW + k
            n = min(int(episodes.length[i]), LENGTH - position)
            span = slice(position, position + n)
            np.testing.assert_array_equal(packed.obs[r, span], episodes.obs[i, :n])
            np.testing.assert_array_equal(packed.next_obs[r, span], episodes.obs[i, 1 : n + 1])
            np.testing.assert_array_equal(packed.actions[r, span], episodes.actions[i, :n])
            assert (packed.segments[r, span] == k).all() and packed.mask[r, span].all()
            position += n
            if position == LENGTH:
                break
        assert not packed.mask[r, position:].any()


@pytest.mark.parametrize("arch", ["transformer", "hawk"])
def test_a_packed_row_gives_each_episode_the_outputs_it_gets_alone(arch, episodes):
    sizes = dict(n_layers=2, width=32, mlp_width=48, init_scale=1.0, encoder="agent_relative")
    if arch == "transformer":
        sizes.update(n_heads=2, head_dim=16, n_buckets=8, max_distance=32)
    else:
        sizes.update(n_heads=4)
    model = make_base_model(arch, **sizes)
    params = model.init(jax.random.key(1))
    packed = pack_episodes(episodes, ROWS, LENGTH)
    alone = episode_tokens(episodes)
    packed_logits, _ = model.forward(params, packed.obs, packed.segments)
    alone_logits, _ = model.forward(params, alone.obs, alone.segments)
    packed_logits, alone_logits = np.asarray(packed_logits), np.asarray(alone_logits)
    segments, mask = np.asarray(packed.segments), np.asarray(packed.mask)
    for r in range(ROWS):
        for k in range(PER_ROW):
            where = np.flatnonzero((segments[r] == k) & mask[r])
            if where.size:
                got = packed_logits[r, where]
                want = alone_logits[r * PER_ROW + k, : where.size]
                np.testing.assert_allclose(got, want, atol=2e-5)
