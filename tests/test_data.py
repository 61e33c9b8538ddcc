import jax
import numpy as np
import pytest
from helpers import ENV, POST, PRETRAIN

from irl.data import make_expert_data
from irl.envs.render import decode_observation, render_episode, render_state, save_png


@pytest.fixture(scope="module")
def batch():
    return jax.device_get(make_expert_data(ENV, PRETRAIN, 32)(jax.random.key(0)))


def test_shapes_and_dtypes(batch):
    assert batch.obs.shape == (32, 101, 637) and batch.obs.dtype == np.uint8
    assert batch.actions.shape == batch.mask.shape == batch.subgoal.shape == (32, 100)
    assert batch.task_id.shape == batch.success.shape == batch.length.shape == (32,)


def test_mask_labels_and_padding_are_consistent(batch):
    tasks = np.asarray(PRETRAIN.tasks)
    for i in range(32):
        n = batch.length[i]
        assert batch.mask[i, :n].all() and not batch.mask[i, n:].any()
        assert (batch.actions[i, n:] == 0).all()
        assert (batch.obs[i, n + 1 :] == batch.obs[i, n]).all()  # the last obs repeats
        task = tasks[batch.task_id[i]]
        progress = batch.progress[i, :n]
        assert (np.diff(progress) >= 0).all() and progress[0] == 0
        assert (batch.subgoal[i, :n] == task[progress] // 2).all()
        # the agent moves (or bumps) exactly once per step and each obs is one-hot per channel
        assert (batch.obs[i].reshape(101, 49, 13).sum(axis=1) == 1).all()


def test_same_key_same_batch_and_new_key_new_batch():
    generate = make_expert_data(ENV, PRETRAIN, 8)
    a, b, c = generate(jax.random.key(7)), generate(jax.random.key(7)), generate(jax.random.key(8))
    assert (np.asarray(a.obs) == np.asarray(b.obs)).all() and (np.asarray(a.actions) == np.asarray(b.actions)).all()
    assert not (np.asarray(a.obs) == np.asarray(c.obs)).all()


def test_bad_arguments_fail_before_compute():
    with pytest.raises(ValueError, match="batch_size"):
        make_expert_data(ENV, PRETRAIN, 0)
    with pytest.raises(ValueError, match="eps"):
        make_expert_data(ENV, PRETRAIN, 4, eps=1.5)
    with pytest.raises(ValueError, match="labels"):
        make_expert_data(ENV, PRETRAIN, 4, labels="noisy")


def test_render_state_and_episode(tmp_path, batch):
    image = render_episode(batch.obs[0], batch.length[0], title="expert")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    path = save_png(image, tmp_path / "episode.png")
    assert path.stat().st_size > 500
    _, state = ENV.reset(jax.random.key(0), POST)
    assert render_state(state).shape == image.shape
    agent, colors, walls = decode_observation(batch.obs[0, 0])
    assert len({tuple(c) for c in np.concatenate([colors, walls, agent[None]])}) == 13



def test_optimal_action_labels_match_taken_actions_without_noise_and_are_optimal_with_it():
    from irl.envs.render import decode_observation
    from irl.experts import optimal_actions

    clean = jax.device_get(make_expert_data(ENV, PRETRAIN, 8)(jax.random.key(3)))
    assert (clean.optimal_actions == clean.actions).all()

    noisy = jax.device_get(make_expert_data(ENV, PRETRAIN, 8, eps=0.5, max_steps=40)(jax.random.key(4)))
    mask = noisy.mask
    assert (noisy.actions[mask] != noisy.optimal_actions[mask]).any()  # noise fired and changed moves
    relabelled = make_expert_data(ENV, PRETRAIN, 8, eps=0.5, max_steps=40, labels="optimal")(jax.random.key(4))
    assert (np.asarray(relabelled.obs) == noisy.obs).all() and (np.asarray(relabelled.actions) == noisy.optimal_actions).all()
    _, template = ENV.reset(jax.random.key(0), PRETRAIN)
    optimal_at = jax.jit(optimal_actions)
    for i in range(4):
        task_id = int(noisy.task_id[i])
        for t in range(int(mask[i].sum())):  # the state before step t, rebuilt from its observation
            agent, colors, walls = decode_observation(noisy.obs[i, t])
            state = template.replace(agent=agent, colors=colors, walls=walls, task=PRETRAIN.tasks[task_id],
                                     task_len=PRETRAIN.task_lens[task_id], progress=noisy.progress[i, t])
            assert bool(optimal_at(state)[noisy.optimal_actions[i, t]]), (i, t)


def test_dropped_prefixes_leave_the_rest_of_each_episode_in_place():
    from helpers import ENV, PRETRAIN

    from irl.data import drop_prefixes, make_expert_data

    batch = make_expert_data(ENV, PRETRAIN, 32, max_steps=60)(jax.random.key(0))
    cut = drop_prefixes(batch, jax.random.key(1), 0.5)
    offset = np.asarray(batch.length - cut.length)
    assert 0 < (offset > 0).sum() < 32 and (np.asarray(cut.length) >= 1).all()
    for i in range(32):
        o, n = int(offset[i]), int(cut.length[i])
        np.testing.assert_array_equal(cut.obs[i, : n + 1], batch.obs[i, o : o + n + 1])
        np.testing.assert_array_equal(cut.obs[i, n + 1 :], np.broadcast_to(batch.obs[i, o + n], cut.obs[i, n + 1 :].shape))
        for field in ("actions", "subgoal", "progress", "policy"):
            np.testing.assert_array_equal(getattr(cut, field)[i, :n], getattr(batch, field)[i, o : o + n])
        assert not np.asarray(cut.actions[i, n:]).any() and not np.asarray(cut.policy[i, n:]).any()
        assert np.asarray(cut.mask[i]).sum() == n and np.asarray(cut.mask[i, :n]).all()
    untouched = drop_prefixes(batch, jax.random.key(1), 0.0)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), untouched, batch))
