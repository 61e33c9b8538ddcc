"""AntPinpad expert data for the base model: a fixed set of expert episodes, drawn from.

On GridPinpad fresh episodes cost microseconds and pretraining draws new ones every step
(irl/data.py). On the ant an episode is 500 steps of MJX physics plus the expert's network, so
the set is generated once (`make_dataset`, with sampled actions for pretraining, as SPEC.md
section 3 says) and training batches are rows drawn from it (`draw`). The set is an
`AntEpisodes` without its final states; its fields line up with irl.data.ExpertBatch
(obs, actions, mask, subgoal, progress, task_id, success, length), so `episode_tokens` and the
later stages read it the same way, with float observations and torques.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from irl.experts.ant_expert import AntEpisodes, AntExpert, run_many


def make_dataset(expert: AntExpert, n_episodes: int, key: jax.Array, deterministic: bool = False,
                 tasks: str = "pretrain", chunk: int = 256) -> AntEpisodes:
    """n_episodes expert episodes of AntPinpad (T = 500), generated `chunk` at a time, without
    their final states."""
    return run_many(expert, tasks, key, n_episodes, deterministic, chunk, keep_final=False)


_SAVED_FIELDS = [f for f in dataclasses.fields(AntEpisodes) if f.name != "final"]  # final states: not kept


def load_or_make(path: str | Path, meta: dict, make) -> AntEpisodes:
    """The episode set saved at `path` (an .npz) when it was made with the same `meta`, else
    `make()`, saved there. Every stage that reads a pretrained ant model rebuilds its trainer,
    and without this each would run the expert's MJX rollouts again (at `small`: 66 s to make,
    0.6 s to read back, 225 MB)."""
    path = Path(path)
    if path.exists():
        with np.load(path) as saved:
            if json.loads(str(saved["meta"])) == meta:
                return AntEpisodes(**{f.name: jnp.asarray(saved[f.name]) for f in _SAVED_FIELDS}, final=None)
    episodes = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:  # a killed run leaves no half-written set behind
        np.savez(f, meta=json.dumps(meta), **{f.name: np.asarray(getattr(episodes, f.name)) for f in _SAVED_FIELDS})
    os.replace(partial, path)
    return episodes


def crop(episodes: AntEpisodes, max_steps: int) -> AntEpisodes:
    """The first max_steps steps of every episode (a prefix is still a correct teacher-forced
    sequence); length and success are those of the prefix."""
    steps = episodes.actions.shape[1]
    if max_steps >= steps:
        return episodes
    length = jnp.minimum(episodes.length, max_steps)
    return episodes.replace(
        obs=episodes.obs[:, : max_steps + 1], actions=episodes.actions[:, :max_steps], mask=episodes.mask[:, :max_steps],
        subgoal=episodes.subgoal[:, :max_steps], progress=episodes.progress[:, :max_steps],
        xy=episodes.xy[:, : max_steps + 1], success=episodes.success & (episodes.length <= max_steps), length=length)


def draw(dataset: AntEpisodes, key: jax.Array, batch: int, max_steps: int, distinct: bool = False) -> AntEpisodes:
    """batch episodes drawn uniformly from the set, cropped to max_steps: with replacement (a
    training batch), or `distinct` ones (a held-out measure, which must not score an episode
    twice, nor fit and judge on copies of one)."""
    n = dataset.length.shape[0]
    if distinct and batch > n:
        raise ValueError(f"cannot draw {batch} distinct episodes from a set of {n}")
    rows = jax.random.choice(key, n, (batch,), replace=False) if distinct else jax.random.randint(key, (batch,), 0, n)
    return crop(jax.tree.map(lambda x: x[rows], dataset), max_steps)
