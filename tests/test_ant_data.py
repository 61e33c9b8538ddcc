"""The ant's episode set is saved once in the pretraining workdir and read back by every
later stage, unless it was made for another config."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import ant
from irl import ant_data
from irl.experts.ant_expert import AntEpisodes
from irl.pretraining import Pretrainer


def fake_episodes(value: float) -> AntEpisodes:
    n, t = 3, 4
    return AntEpisodes(
        obs=jnp.full((n, t + 1, 41), value), actions=jnp.full((n, t, 8), value), mask=jnp.ones((n, t), bool),
        subgoal=jnp.zeros((n, t), jnp.int32), progress=jnp.zeros((n, t), jnp.int32), xy=jnp.full((n, t + 1, 2), value),
        task_id=jnp.arange(n, dtype=jnp.int32), success=jnp.array([True, False, True]),
        length=jnp.full(n, t, jnp.int32), final=None,
    )


def test_the_episode_set_is_made_once_and_read_back(tmp_path):
    path, calls = tmp_path / "pretrain" / "ant_episodes.npz", []

    def make(value=1.5):
        calls.append(value)
        return fake_episodes(value)

    meta = dict(seed=0, episodes=3, expert="shipped")
    first = ant_data.load_or_make(path, meta, make)
    again = ant_data.load_or_make(path, meta, make)
    assert calls == [1.5] and path.exists() and not path.with_name(path.name + ".partial").exists()
    for field in ("obs", "actions", "mask", "subgoal", "progress", "xy", "task_id", "success", "length"):
        a, b = np.asarray(getattr(first, field)), np.asarray(getattr(again, field))
        assert a.dtype == b.dtype and (a == b).all(), field
    other = ant_data.load_or_make(path, dict(meta, seed=1), lambda: make(2.5))  # another config: made anew
    assert calls == [1.5, 2.5] and float(other.obs[0, 0, 0]) == 2.5
    assert float(ant_data.load_or_make(path, dict(meta, seed=1), make).obs[0, 0, 0]) == 2.5


def test_held_out_measures_draw_from_the_episodes_kept_apart():
    """Held-out measures (probes, discovery) read the ant's held-out set, never its training set."""
    trainer = Pretrainer.__new__(Pretrainer)  # only the episode sets matter here, not a model
    trainer.config = ml_collections.ConfigDict(dict(data=dict(max_episode_steps=3)))
    trainer.dataset, trainer.held_out = fake_episodes(1.0), fake_episodes(2.0)
    key = jax.random.key(0)
    assert (np.asarray(trainer.expert_data(5)(key).obs) == 1.0).all()
    held_out = trainer.held_out_data(3)(key)
    assert (np.asarray(held_out.obs) == 2.0).all() and held_out.actions.shape == (3, 3, 8)


def test_the_metacontrollers_data_is_the_mean_action_set():
    """SPEC.md section 3: pretraining on the expert's sampled torques, the metacontroller on its
    mean action; each draws from its own set, and from its own held-out part."""
    trainer = Pretrainer.__new__(Pretrainer)
    trainer.config = ml_collections.ConfigDict(dict(data=dict(max_episode_steps=3)))
    trainer.dataset, trainer.held_out = fake_episodes(1.0), fake_episodes(2.0)
    trainer.mean_action_sets = (fake_episodes(3.0), fake_episodes(4.0))
    key = jax.random.key(0)
    for mean_action, train, held_out in ((False, 1.0, 2.0), (True, 3.0, 4.0)):
        assert (np.asarray(trainer.expert_data(2, mean_action=mean_action)(key).obs) == train).all()
        assert (np.asarray(trainer.held_out_data(2, mean_action=mean_action)(key).obs) == held_out).all()


def test_a_held_out_measure_reads_each_episode_once_and_asks_no_more_than_were_kept():
    """Drawn with replacement, 64 of 64 held-out episodes were about 41 distinct ones, and a code
    readout fitted on some segments and judged on others judged copies of what it fitted."""
    trainer = Pretrainer.__new__(Pretrainer)
    trainer.config = ml_collections.ConfigDict(dict(data=dict(max_episode_steps=3)))
    many = jax.tree.map(lambda x: jnp.concatenate([x] * 20), fake_episodes(2.0))
    trainer.dataset, trainer.held_out = many, many.replace(task_id=jnp.arange(60, dtype=jnp.int32))
    for seed in range(5):
        drawn = np.asarray(trainer.held_out_data(60)(jax.random.key(seed)).task_id)
        assert sorted(drawn.tolist()) == list(range(60))
    with pytest.raises(ValueError, match="kept eval.episodes=60"):
        trainer.held_out_data(61)
    with pytest.raises(ValueError, match="distinct"):
        ant_data.draw(many, jax.random.key(0), 61, 3, distinct=True)


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_every_held_out_measure_of_a_preset_fits_in_the_episodes_it_keeps_apart(preset):
    kept = ant.pretrain_config(preset).eval.episodes
    discover = ant.discover_config(preset).eval
    assert max(discover.episodes, discover.progress_episodes, ant.analysis_config(preset).probe.eval_episodes) <= kept
