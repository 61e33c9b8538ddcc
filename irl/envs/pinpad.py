"""What the pinpad worlds share: their params and the rule that turns a visit into progress,
failure or success (SPEC.md sections 2 and 3).

Which task is being solved is tracked as a set of *candidate* tasks: one task normally, every
pretraining task in the `any_task` mode used to judge a policy that cannot know the latent task.
A visit to colour c at progress p keeps the candidates whose p-th colour is c; none left is a
failure, and a surviving candidate of length p+1 is a success. One rule serves both modes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class PinpadParams:
    tasks: jax.Array  # int32 [n_tasks, MAX_TASK_LEN], padded with -1
    task_lens: jax.Array  # int32 [n_tasks]
    time_limit: jax.Array  # int32 []
    any_task: jax.Array  # bool []: succeed on completing any task of the table


def visit_outcome(progress, candidates, visit, color, params: PinpadParams):
    """A step that visits colour `color` (when `visit`): (progress, candidates, success, failure).

    progress int32 [], candidates bool [n_tasks], visit bool [], color int32 [].
    """
    next_colors = jnp.take(params.tasks, progress, axis=1, mode="clip")  # [n_tasks]
    consistent = candidates & (next_colors == color)
    advance = visit & jnp.any(consistent)
    candidates = jnp.where(advance, consistent, candidates)
    progress = progress + advance.astype(jnp.int32)
    success = advance & jnp.any(candidates & (params.task_lens == progress))
    return progress, candidates, success, visit & ~advance


def initial_candidates(task_id, params: PinpadParams):
    """bool [n_tasks]: the drawn task, or every task of the table in the any-task mode."""
    n_tasks = params.tasks.shape[0]
    return jnp.where(params.any_task, params.task_lens > 0, jnp.arange(n_tasks) == task_id)
