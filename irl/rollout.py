"""Closed-loop episodes of a base model acting alone, one observation at a time through its
step-wise cache (O(1) per step for Hawk, O(t) for attention; never a re-run of the prefix)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from irl.models.base import BaseModel
from irl.spaces import CategoricalActions


@struct.dataclass
class Episodes:
    success: jax.Array  # bool [N]
    length: jax.Array  # int32 [N]: steps taken
    progress: jax.Array  # int32 [N]: task colours visited when the episode ended
    obs: jax.Array | None = None  # [N, max_steps+1, obs_size] when recorded; the last repeats
    final: object | None = None  # the environment's last state per episode [N] (record or last_states)
    previous: object | None = None  # the state before each episode's last step [N] (record or last_states)


def run_base_model(model: BaseModel, params, env, env_params, key: jax.Array, n_episodes: int,
                   greedy: bool = False, max_steps: int | None = None, layer: int = 0,
                   steer: Callable[[jax.Array, object], jax.Array] | None = None, record: bool = False,
                   action_space=CategoricalActions(), last_states: bool = False) -> Episodes:
    """`n_episodes` episodes in parallel, actions sampled from the model (its mode if greedy);
    action_space (irl/spaces.py) reads the action head: the grid's moves by default.

    steer(e [N, D], env_state) -> e replaces the residual stream at `layer` before the upper
    blocks run (a controller); None leaves the model alone. Pure and jittable (model, env,
    n_episodes, greedy, max_steps, layer, steer, record, action_space and last_states static).
    last_states=True also returns each episode's last state and the state before its last step
    (failure analysis); record=True returns those and every observation (rendering)."""
    last_states = last_states or record
    max_steps = int(env_params.time_limit) if max_steps is None else max_steps
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, n_episodes), env_params)
    cache = model.init_cache((n_episodes,), max_steps)

    def step(carry, key):
        obs, state, cache, done, success, length, previous = carry
        act_key, env_key = jax.random.split(key)
        e, cache = model.lower_step(params, cache, obs, layer)
        if steer is not None:
            e = steer(e, state)
        (logits, _), cache = model.upper_step(params, cache, e, layer)
        action = action_space.mode(logits) if greedy else action_space.sample(act_key, logits)
        next_obs, next_state, _, next_done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, n_episodes), state, action, env_params
        )
        keep = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), old, new)
        if last_states:
            previous = jax.tree.map(keep, state, previous)
        state = jax.tree.map(keep, next_state, state)
        success = success | (info["success"] & ~done)
        length = length + (~done).astype(jnp.int32)
        obs = keep(next_obs, obs)
        return (obs, state, cache, done | next_done, success, length, previous), obs if record else None

    zeros = jnp.zeros(n_episodes, bool)
    carry = (obs, state, cache, zeros, zeros, jnp.zeros(n_episodes, jnp.int32), state if last_states else None)
    (_, state, _, _, success, length, previous), seen = jax.lax.scan(step, carry,
                                                                    jax.random.split(run_key, max_steps))
    if record:
        seen = jnp.concatenate([obs[None], seen], axis=0).swapaxes(0, 1)
    return Episodes(success=success, length=length, progress=state.progress, obs=seen,
                    final=state if last_states else None, previous=previous)
