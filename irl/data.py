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
from irl.experts.grid_expert import grid_expert_step


@struct.dataclass
class ExpertBatch:
    obs: jax.Array  # uint8 [B, T+1, obs_size]; after the episode ends, the last obs repeats
    actions: jax.Array  # int32 [B, T]; 0 on padding
    optimal_actions: jax.Array  # int32 [B, T]: the noise-free expert's move in the same state (= actions at eps=0)
    mask: jax.Array  # bool [B, T]: step t was taken inside the episode
    subgoal: jax.Array  # int32 [B, T]: subgoal pursued when acting at t (probe label)
    progress: jax.Array  # int32 [B, T]: task colours visited before acting at t
    task_id: jax.Array  # int32 [B]
    success: jax.Array  # bool [B]
    length: jax.Array  # int32 [B]: steps taken
    # float32 [B, T, 4]: the expert's action distribution at t, which `actions` was drawn from
    # (0 on padding); None where the expert has no such form (the ant's data)
    policy: jax.Array | None = None


def expert_episode(env: GridPinpad, params: GridPinpadParams, key: jax.Array, eps, max_steps: int,
                   labels: str = "taken") -> ExpertBatch:
    """One episode of the grid expert, padded to max_steps (unbatched ExpertBatch); `policy` is
    the distribution of the actions `labels` names (make_expert_data)."""
    reset_key, run_key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def step(carry, key):
        obs, state, done = carry
        action, optimal, policy = grid_expert_step(key, state, eps, eps if labels == "taken" else 0.0)
        label, progress = current_subgoal(state), state.progress
        next_obs, next_state, _, next_done, info = env.step(key, state, action, params)
        keep = lambda new, old: jnp.where(done, old, new)
        carry = (keep(next_obs, obs), jax.tree.map(keep, next_state, state), done | next_done)
        out = (next_obs, jnp.where(done, 0, action), jnp.where(done, 0, optimal), jnp.where(done, 0.0, policy), ~done,
               label, progress, info["success"] & ~done)
        return carry, out

    (_, _, _), (next_obs, actions, optimal_actions, policy, mask, subgoal, progress, success) = jax.lax.scan(
        step, (obs, state, jnp.array(False)), jax.random.split(run_key, max_steps)
    )
    # frozen steps repeat the last real observation
    length = jnp.sum(mask)
    last = next_obs[jnp.maximum(length - 1, 0)]
    next_obs = jnp.where(mask[:, None], next_obs, last)
    return ExpertBatch(
        obs=jnp.concatenate([obs[None], next_obs], axis=0),
        actions=actions,
        optimal_actions=optimal_actions,
        mask=mask,
        subgoal=subgoal,
        progress=progress,
        task_id=state.task_id,
        success=jnp.any(success),
        length=length.astype(jnp.int32),
        policy=policy,
    )


def drop_prefixes(batch: ExpertBatch, key: jax.Array, fraction: float) -> ExpertBatch:
    """A `fraction` of the episodes (drawn independently) lose a prefix of uniform length in
    1..length-1 steps: the row then starts mid-episode with no history, so whatever the
    expert does next is not predicted by what came before. Per-step fields shift left; the
    freed tail is padding (mask False, the last observation repeated, zero actions and policy;
    subgoal and progress there are not labels)."""
    cut_key, offset_key = jax.random.split(key)
    n, steps = batch.mask.shape
    cut = jax.random.uniform(cut_key, (n,)) < fraction
    offset = jnp.where(cut & (batch.length > 1),
                       jax.random.randint(offset_key, (n,), 1, jnp.maximum(batch.length, 2)), 0)
    t = jnp.arange(steps)[None, :] + offset[:, None]  # [n, T]: the source step of each step
    inside = t < batch.length[:, None]
    source = jnp.minimum(t, steps - 1)
    take = lambda x: jnp.take_along_axis(x, source.reshape(n, steps, *([1] * (x.ndim - 2))), axis=1)
    zero = lambda x: jnp.where(inside.reshape(n, steps, *([1] * (x.ndim - 2))), take(x), 0)
    obs_source = jnp.minimum(jnp.arange(steps + 1)[None, :] + offset[:, None], batch.length[:, None])
    return batch.replace(
        obs=jnp.take_along_axis(batch.obs, obs_source[..., None], axis=1),
        actions=zero(batch.actions), optimal_actions=zero(batch.optimal_actions), mask=inside & take(batch.mask),
        subgoal=take(batch.subgoal), progress=take(batch.progress), length=batch.length - offset,
        policy=None if batch.policy is None else zero(batch.policy),
    )


LABELS = ("taken", "optimal")


def make_expert_data(
    env: GridPinpad, params: GridPinpadParams, batch_size: int, eps: float = 0.0, max_steps: int | None = None,
    labels: str = "taken",
) -> Callable[[jax.Array], ExpertBatch]:
    """A jitted function key -> ExpertBatch of `batch_size` expert episodes.

    max_steps defaults to the environment's time limit (T = 100 for the grid). `labels` says
    which move `actions` holds: "taken", the eps-noisy expert's, or "optimal", the noise-free
    expert's move in the same state (states from noisy rollouts, so that a model learns to
    recover; the two agree at eps = 0).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    max_steps = int(params.time_limit) if max_steps is None else max_steps
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")

    @jax.jit
    def generate(key: jax.Array) -> ExpertBatch:
        keys = jax.random.split(key, batch_size)
        batch = jax.vmap(lambda k: expert_episode(env, params, k, eps, max_steps, labels))(keys)
        return batch.replace(actions=batch.optimal_actions) if labels == "optimal" else batch

    return generate


@struct.dataclass
class TokenBatch:
    """Training rows for a sequence model: one token per step, input o_t, targets a_t, o_t+1.

    A row holds one episode (`segments` None: nothing to mask) or several packed end to end,
    told apart by `segments` (the model attends, or recurs, only within a segment).
    """

    obs: jax.Array  # [B, L, obs_size]: o_t (uint8 on the grid, float32 on the ant)
    next_obs: jax.Array  # [B, L, obs_size]: o_t+1
    actions: jax.Array  # int32 [B, L] (grid moves) or float32 [B, L, 8] (ant torques)
    mask: jax.Array  # bool [B, L]: a real step (targets count)
    segments: jax.Array | None  # int32 [B, L]: episode index within the row; None: one episode per row
    subgoal: jax.Array  # int32 [B, L]
    policy: jax.Array | None = None  # float32 [B, L, 4]: the expert's distribution of a_t (ExpertBatch.policy)


def episode_tokens(batch: ExpertBatch) -> TokenBatch:
    """One episode per row, padded to max_steps."""
    return TokenBatch(
        obs=batch.obs[:, :-1],
        next_obs=batch.obs[:, 1:],
        actions=batch.actions,
        mask=batch.mask,
        segments=None,  # one episode: no per-token mask of other episodes' tokens to build
        subgoal=batch.subgoal,
        policy=getattr(batch, "policy", None),  # the ant's episodes have none
    )


def pack_episodes(batch: ExpertBatch, rows: int, length: int) -> TokenBatch:
    """Lay the episodes of `batch` end to end, batch.size // rows consecutive episodes per row,
    each row cut at `length` tokens. The last episode of a row may be cut short (a prefix is
    still a correct teacher-forced sequence); a row whose episodes run out is padded."""
    n_episodes = batch.length.shape[0]
    if n_episodes % rows:
        raise ValueError(f"{n_episodes} episodes do not split into {rows} rows")
    per_row = n_episodes // rows
    grouped = jax.tree.map(lambda x: x.reshape(rows, per_row, *x.shape[1:]), batch)

    def row(ep: ExpertBatch) -> TokenBatch:
        ends = jnp.cumsum(ep.length)
        position = jnp.arange(length)
        episode = jnp.searchsorted(ends, position, side="right")  # per_row where none is left
        valid = episode < per_row
        k = jnp.minimum(episode, per_row - 1)
        t = jnp.clip(position - (ends[k] - ep.length[k]), 0, ep.actions.shape[1] - 1)
        return TokenBatch(
            obs=ep.obs[k, t],
            next_obs=ep.obs[k, t + 1],
            actions=jnp.where(valid, ep.actions[k, t], 0),
            mask=valid & ep.mask[k, t],
            segments=episode.astype(jnp.int32),
            subgoal=ep.subgoal[k, t],
            policy=(None if getattr(ep, "policy", None) is None
                    else jnp.where(valid[:, None], ep.policy[k, t], 0.0)),
        )

    return jax.vmap(row)(grouped)
