"""The raw-action baseline (SPEC.md section 7, baseline a): the policy is the pretrained base
model itself, every parameter fine-tuned, acting on primitive actions through its step-wise
cache. The same PPO rule puts the episode's advantage on every action.

Log-probabilities for the update are recomputed with one teacher-forced forward over the
episode's observations: the model is causal, so position t of the full forward sees exactly
o_1..t, as the step-wise cache did when it acted (tests check the two agree); a slot's
episodes played back to back are kept apart by segment ids, as the restarted cache kept them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from irl.models.base import BaseModel
from irl.rl.common import (action_log_prob, begin_new_episodes, env_step, episode_keys, episode_stream, fold_in_time,
                           sample_actions, split_keys)
from irl.spaces import CategoricalActions


@struct.dataclass
class RawEpisodes:
    """A fixed-shape batch of episode slots, per step [B, S] (S = T: one episode per slot)."""
    obs: jax.Array  # [B, S+1, O]: the observation the model saw at each step (a new episode's
    #                 first where one began), then the last; zeros once the slot is done
    actions: jax.Array  # [B, S] moves (int32) or [B, S, A] torques
    log_prob: jax.Array  # [B, S] log p(a_t | the episode's o_1..t) when acting
    reward: jax.Array  # [B, S]
    alive: jax.Array  # bool [B, S]: step t was taken (by some episode of the slot)
    episode: jax.Array  # int32 [B, S]: which episode of its slot took step t
    ended: jax.Array  # bool [B, S]: an episode ended at step t
    end_progress: jax.Array  # int32 [B, S]: the task colours it had visited (0 elsewhere)
    succeeded: jax.Array  # bool [B, S]: it ended solved
    returns: jax.Array  # [B] summed over the slot's episodes
    success: jax.Array  # bool [B] some episode of the slot was solved
    length: jax.Array  # int32 [B] steps taken
    progress: jax.Array  # int32 [B] task colours visited in the slot's last episode


def rollout(model: BaseModel, params, env, env_params, key: jax.Array, n_slots: int,
            greedy: bool = False, action_space=CategoricalActions(), steps: int | None = None) -> RawEpisodes:
    """`n_slots` episode slots in lockstep over `steps` raw steps (default and minimum: the time
    limit T), one lax.scan; with more, a slot whose episode ends before step steps - T begins
    a new one (as irl.rl.internal_env.InternalEnv.rollout does, with the same key streams:
    irl.rl.common.episode_keys and episode_stream; the same layouts as
    irl.rollout.run_base_model for a slot's first episode)."""
    limit = int(env_params.time_limit)
    steps = limit if steps is None else steps
    if steps < limit:
        raise ValueError(f"a rollout needs at least the time limit T={limit} steps, got {steps}")
    last_start = steps - limit
    reset_keys, action_keys, _ = episode_keys(key, n_slots)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)
    cache = model.init_cache((n_slots,), limit)

    def body(carry, t):
        obs, env_state, cache, done, success, episode = carry
        act_keys, env_keys = split_keys(fold_in_time(episode_stream(action_keys, episode), env_state.t))
        e, cache = model.lower_step(params, cache, obs, 0)
        (logits, _), cache = model.upper_step(params, cache, e, 0)
        action = sample_actions(act_keys, logits, greedy, action_space)
        alive = ~done
        next_obs, env_state, reward, done, succeeded = env_step(env, env_params, env_keys, env_state, action, done)
        ended = alive & done
        out = {"actions": action, "log_prob": action_log_prob(logits, action, action_space), "reward": reward,
               "alive": alive, "episode": episode, "ended": ended, "succeeded": succeeded,
               "end_progress": jnp.where(ended, env_state.progress, 0)}
        if last_start > 0:
            restart = ended & (t < last_start)
            next_obs, env_state, cache = begin_new_episodes(env, env_params, model, restart,
                                                            episode_stream(reset_keys, episode + 1), next_obs,
                                                            env_state, cache)
            done, episode = done & ~restart, episode + restart.astype(jnp.int32)
        out["obs"] = jnp.where(alive[:, None], next_obs, 0)
        return (next_obs, env_state, cache, done, success | succeeded, episode), out

    zeros = jnp.zeros(n_slots, bool)
    carry = (obs, env_state, cache, zeros, zeros, jnp.zeros(n_slots, jnp.int32))
    (_, env_state, _, _, success, _), out = jax.lax.scan(body, carry, jnp.arange(steps))
    out = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)
    first_obs = obs[:, None]
    return RawEpisodes(obs=jnp.concatenate([first_obs, out.pop("obs")], axis=1), **out,
                       returns=out["reward"].sum(1), success=success, length=out["alive"].sum(1).astype(jnp.int32),
                       progress=env_state.progress)


def log_prob(model: BaseModel, params, obs: jax.Array, actions: jax.Array,
             action_space=CategoricalActions(), episode: jax.Array | None = None) -> jax.Array:
    """log p(a_t | o_1..t) [B, S] by one teacher-forced forward over obs [B, S+1, O] (the last
    observation is never an input); with `episode` [B, S], over each episode's own
    observations only (the model's packed form, segment ids)."""
    logits, _ = model.forward(params, obs[:, :-1], episode)
    return action_log_prob(logits, actions, action_space)
