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

import jax
import jax.numpy as jnp

from irl.experts.ant_expert import AntEpisodes, AntExpert, run_many


def make_dataset(expert: AntExpert, n_episodes: int, key: jax.Array, deterministic: bool = False,
                 tasks: str = "pretrain", chunk: int = 256) -> AntEpisodes:
    """n_episodes expert episodes of AntPinpad (T = 500), generated `chunk` at a time, without
    their final states."""
    return run_many(expert, tasks, key, n_episodes, deterministic, chunk, keep_final=False)


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


def draw(dataset: AntEpisodes, key: jax.Array, batch: int, max_steps: int) -> AntEpisodes:
    """batch episodes drawn uniformly (with replacement) from the set, cropped to max_steps."""
    rows = jax.random.randint(key, (batch,), 0, dataset.length.shape[0])
    return crop(jax.tree.map(lambda x: x[rows], dataset), max_steps)
