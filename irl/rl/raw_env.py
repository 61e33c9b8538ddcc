"""The raw-action baseline (SPEC.md section 7, baseline a): the policy is the pretrained base
model itself, every parameter fine-tuned, acting on primitive actions through its step-wise
cache. The same PPO rule puts the episode's advantage on every action.

Log-probabilities for the update are recomputed with one teacher-forced forward over the
episode's observations: the model is causal, so position t of the full forward sees exactly
o_1..t, as the step-wise cache did when it acted (tests check the two agree).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from irl.models.base import BaseModel
from irl.rl.common import action_log_prob, env_step, episode_keys, fold_in_time, sample_actions, split_keys
from irl.spaces import CategoricalActions


@struct.dataclass
class RawEpisodes:
    obs: jax.Array  # [B, T+1, O]: o_1..o_{T+1}; zeros after the end
    actions: jax.Array  # [B, T] moves (int32) or [B, T, A] torques
    log_prob: jax.Array  # [B, T] log p(a_t | o_1..t) when acting
    alive: jax.Array  # bool [B, T]: step t was taken
    returns: jax.Array  # [B]
    success: jax.Array  # bool [B]
    length: jax.Array  # int32 [B]
    progress: jax.Array  # int32 [B]


def rollout(model: BaseModel, params, env, env_params, key: jax.Array, n_episodes: int,
            greedy: bool = False, action_space=CategoricalActions()) -> RawEpisodes:
    """`n_episodes` episodes in lockstep over T = time_limit steps, one lax.scan; keys as in
    irl.rl.common.episode_keys (the same layouts as irl.rollout.run_base_model)."""
    steps = int(env_params.time_limit)
    reset_keys, action_keys, _ = episode_keys(key, n_episodes)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)
    cache = model.init_cache((n_episodes,), steps)

    def body(carry, t):
        obs, env_state, cache, done, success = carry
        act_keys, env_keys = split_keys(fold_in_time(action_keys, t))
        e, cache = model.lower_step(params, cache, obs, 0)
        (logits, _), cache = model.upper_step(params, cache, e, 0)
        action = sample_actions(act_keys, logits, greedy, action_space)
        alive = ~done
        next_obs, env_state, reward, done, succeeded = env_step(env, env_params, env_keys, env_state, action, done)
        out = {"obs": jnp.where(alive[:, None], next_obs, 0), "actions": action,
               "log_prob": action_log_prob(logits, action, action_space), "alive": alive, "reward": reward}
        return (next_obs, env_state, cache, done, success | succeeded), out

    zeros = jnp.zeros(n_episodes, bool)
    (_, env_state, _, _, success), out = jax.lax.scan(body, (obs, env_state, cache, zeros, zeros), jnp.arange(steps))
    out = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)
    return RawEpisodes(obs=jnp.concatenate([obs[:, None], out["obs"]], axis=1), actions=out["actions"],
                       log_prob=out["log_prob"], alive=out["alive"], returns=out["reward"].sum(1), success=success,
                       length=out["alive"].sum(1).astype(jnp.int32), progress=env_state.progress)


def log_prob(model: BaseModel, params, obs: jax.Array, actions: jax.Array,
             action_space=CategoricalActions()) -> jax.Array:
    """log p(a_t | o_1..t) [B, T] by one teacher-forced forward over obs [B, T+1, O] (the last
    observation is never an input)."""
    logits, _ = model.forward(params, obs[:, :-1])
    return action_log_prob(logits, actions, action_space)
