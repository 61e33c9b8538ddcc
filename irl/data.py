"""Expert episodes as padded arrays, generated inside one jitted, vmapped program.

`make_expert_data(...)` returns a pure function key -> ExpertBatch, so a training loop can draw
a fresh batch every step on the device, without a host round-trip.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from irl.envs.grid_pinpad import GridPinpad, GridPinpadParams, current_subgoal
from irl.experts.grid_expert import grid_expert_action


@struct.dataclass
class ExpertBatch:
    obs: jax.Array  # uint8 [B, T+1, obs_size]; after the episode ends, the last obs repeats
    actions: jax.Array  # int32 [B, T]; 0 on padding
    mask: jax.Array  # bool [B, T]: step t was taken inside the episode
    subgoal: jax.Array  # int32 [B, T]: subgoal pursued when acting at t (probe label)
    progress: jax.Array  # int32 [B, T]: task colours visited before acting at t
    task_id: jax.Array  # int32 [B]
    success: jax.Array  # bool [B]
    length: jax.Array  # int32 [B]: steps taken


def expert_episode(env: GridPinpad, params: GridPinpadParams, key: jax.Array, eps, max_steps: int) -> ExpertBatch:
    """One episode of the grid expert, padded to max_steps (unbatched ExpertBatch)."""
    reset_key, run_key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def step(carry, key):
        obs, state, done = carry
        action = grid_expert_action(key, state, eps)
        label, progress = current_subgoal(state), state.progress
        next_obs, next_state, _, next_done, info = env.step(key, state, action, params)
        keep = lambda new, old: jnp.where(done, old, new)
        carry = (keep(next_obs, obs), jax.tree.map(keep, next_state, state), done | next_done)
        out = (next_obs, jnp.where(done, 0, action), ~done, label, progress, info["success"] & ~done)
        return carry, out

    (_, _, _), (next_obs, actions, mask, subgoal, progress, success) = jax.lax.scan(
        step, (obs, state, jnp.array(False)), jax.random.split(run_key, max_steps)
    )
    # frozen steps repeat the last real observation
    length = jnp.sum(mask)
    last = next_obs[jnp.maximum(length - 1, 0)]
    next_obs = jnp.where(mask[:, None], next_obs, last)
    return ExpertBatch(
        obs=jnp.concatenate([obs[None], next_obs], axis=0),
        actions=actions,
        mask=mask,
        subgoal=subgoal,
        progress=progress,
        task_id=state.task_id,
        success=jnp.any(success),
        length=length.astype(jnp.int32),
    )


def make_expert_data(
    env: GridPinpad, params: GridPinpadParams, batch_size: int, eps: float = 0.0, max_steps: int | None = None
) -> Callable[[jax.Array], ExpertBatch]:
    """A jitted function key -> ExpertBatch of `batch_size` expert episodes.

    max_steps defaults to the environment's time limit (T = 100 for the grid).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    max_steps = int(params.time_limit) if max_steps is None else max_steps
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")

    @jax.jit
    def generate(key: jax.Array) -> ExpertBatch:
        keys = jax.random.split(key, batch_size)
        return jax.vmap(lambda k: expert_episode(env, params, k, eps, max_steps))(keys)

    return generate
