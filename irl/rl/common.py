"""Pieces the internal-RL and raw-action rollouts share: batching helpers, the per-episode key
streams, and a masked environment step that freezes finished episodes."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from irl.spaces import CategoricalActions


def over_batch(fn: Callable, batch_ndim: int) -> Callable:
    """fn vmapped over `batch_ndim` leading axes of every argument (0: fn itself)."""
    for _ in range(batch_ndim):
        fn = jax.vmap(fn)
    return fn


def standard_normal(keys: jax.Array, size: int) -> jax.Array:
    """[*keys.shape, size]: an N(0, I) draw per key (the prior of the latent codes)."""
    return over_batch(lambda k: jax.random.normal(k, (size,)), keys.ndim)(keys)


def where_tree(mask: jax.Array, new, old):
    """Per-element choice between two pytrees whose leaves lead with mask's shape [*B]."""
    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), a, b)

    return jax.tree.map(pick, new, old)


def episode_keys(key: jax.Array, n_episodes: int):
    """(reset keys [N], action keys [N], policy keys [N]).

    The reset keys are `split(split(key)[0], N)`, those of `irl.rollout.run_base_model`, so
    the same key draws the same layouts. Raw step t of episode i samples its primitive action
    with `fold_in(action_keys[i], t)` and its decision (if one is due) with
    `fold_in(policy_keys[i], t)`: keyed by time, not by position in a loop, which is what lets
    the step-by-step API and the fixed-shape rollout draw the same numbers."""
    reset_key, run_key = jax.random.split(key)
    streams = jax.vmap(lambda k: jax.random.split(k))(jax.random.split(run_key, n_episodes))
    return jax.random.split(reset_key, n_episodes), streams[:, 0], streams[:, 1]


def fold_in_time(keys: jax.Array, t: jax.Array) -> jax.Array:
    """fold_in(keys[i], t[i]) over any batch shape (t broadcast against keys)."""
    t = jnp.broadcast_to(t, keys.shape)
    return over_batch(jax.random.fold_in, keys.ndim)(keys, t)


def episode_stream(keys: jax.Array, episode: jax.Array) -> jax.Array:
    """Each slot's key for its episode number `episode` [*B]: keys[i] itself for the first
    (0), so that a slot's first episode draws what a one-episode rollout draws, and
    fold_in(keys[i], j) for episode j > 0."""
    later = jax.random.key_data(fold_in_time(keys, episode))
    return jax.random.wrap_key_data(where_tree(episode == 0, jax.random.key_data(keys), later))


def sample_actions(keys: jax.Array, out: jax.Array, greedy: bool, action_space=CategoricalActions()) -> jax.Array:
    """One primitive action per episode, each from its own key: keys [*B], action-head
    outputs [*B, H] -> actions [*B, ...] (the action space's mode if greedy)."""
    if greedy:
        return action_space.mode(out)
    return over_batch(action_space.sample, keys.ndim)(keys, out)


def action_log_prob(out: jax.Array, actions: jax.Array, action_space=CategoricalActions()) -> jax.Array:
    """log p(action) under the action head's distribution (the ant's torques: the Gaussian's
    density at the clipped action, which acting and updating both use)."""
    return -action_space.nll(out, actions)


def split_keys(keys: jax.Array, n: int = 2) -> tuple[jax.Array, ...]:
    """n independent keys per element of a batch of keys [*B]."""
    split = over_batch(lambda k: jax.random.split(k, n), keys.ndim)(keys)
    return tuple(split[..., i] for i in range(n))


def env_step(env, env_params, keys: jax.Array, env_state, action: jax.Array, done: jax.Array):
    """Step every unfinished episode of a batch [*B]; finished ones keep their state.

    Returns (obs [*B, O], env_state, reward [*B] (0 once done), done [*B], success [*B]
    (succeeded at this step))."""
    batch_ndim = done.ndim
    step = over_batch(lambda k, s, a: env.step(k, s, a, env_params), batch_ndim)
    obs, new_state, reward, new_done, info = step(keys, env_state, action)
    alive = ~done
    return (obs, where_tree(alive, new_state, env_state), jnp.where(alive, reward, 0.0), done | new_done,
            info["success"] & alive)


def begin_new_episodes(env, env_params, model, restart: jax.Array, reset_keys: jax.Array, obs: jax.Array,
                       env_state, cache):
    """Slots `restart` (bool [*B]) begin a new episode from reset_keys [*B]: the fresh layout's
    first observation replaces `obs` [*B, O], its state `env_state`, and the base model's
    cache rows restart (model.restart_cache). Returns (obs, env_state, cache)."""
    fresh_obs, fresh_state = over_batch(lambda k: env.reset(k, env_params), restart.ndim)(reset_keys)
    return (jnp.where(restart[..., None], fresh_obs, obs), where_tree(restart, fresh_state, env_state),
            model.restart_cache(cache, restart))


def compact(decision: jax.Array, x: jax.Array) -> jax.Array:
    """Move the entries of x [B, T, ...] at decision steps (bool [B, T]) to the front, in order:
    slot k holds the k-th decision; later slots are zero."""
    steps = decision.shape[1]
    slot = jnp.where(decision, jnp.cumsum(decision, axis=1) - 1, steps)  # `steps` is out of range: dropped
    return jax.vmap(lambda s, v: jnp.zeros_like(v).at[s].set(v, mode="drop"))(slot, x)


def episode_sums(episode: jax.Array, x: jax.Array, n_episodes: int) -> jax.Array:
    """Per-step values x [B, S] summed per episode of their slot (episode int [B, S], each
    step's episode index) -> [B, n_episodes]."""
    return jax.vmap(lambda ep, v: jnp.zeros(n_episodes, x.dtype).at[ep].add(v, mode="drop"))(episode, x)
