"""The environment internal RL acts in (SPEC.md section 7): actions are latent codes z, the
observation is the residual stream e at the controlled layer of the frozen base model.

Frozen: the base model, the metacontroller's GRU, switching unit and decoder (`frozen` is the
pytree {"base": ..., "mc": ..., "force_beta_one": ...} of one pretrained model, see
frozen_params). One raw step at time t, with the code z in force, follows the metacontroller's
training-time order exactly
(irl.control.metacontroller.sequence):

    U           = f_hyp(z)                                  the controller of the code
    a_t         ~ upper(e_t + U e_t)                        the base model's primitive action
    o_{t+1}     = env.step(a_t)
    e_{t+1}     = lower(o_{t+1})                            through the step-wise cache
    h_t         = GRU(e_t, h_{t-1})
    beta_{t+1}  = switch(e_{t+1}, h_t, z)                   (1 for a beta=1 metacontroller)

A new decision is due when beta_{t+1} >= 0.5; until then z is held, exactly, which is the
binary limit of the metacontroller's z_t = beta z~ + (1 - beta) z_{t-1}. Every cache
(attention keys/values or SSM state, GRU state) carries over from raw step to raw step.

Two APIs over the same `raw_step`:
- `reset(frozen, key)` / `step(frozen, key, state, z)`: the abstract-step environment. One
  episode (vmap it for a batch); `step` runs raw steps in a `while_loop` until the switch
  fires or the episode ends and returns the summed reward.
- `rollout(frozen, key, n_slots, decide, decide_state, steps=S)`: the form training uses, one
  `lax.scan` over S raw steps of a batch of episode slots in lockstep, which queries the
  policy at every step and keeps its answer (and its state) only where a decision is due.
  With S = T each slot plays one episode. With S > T a slot whose episode ends at a step
  t < S - T starts a new one at t + 1 (every cache, the GRU, the code and the policy's state
  restarted), so the lockstep scan, which pays for every slot at every step, plays several
  short episodes where it would idle. Episodes start at step S - T at the latest, so every
  episode begun ends within the S steps: none is cut short, and which episodes are kept
  never depends on how they end.
The second is the faster one under vmap on CPU (irl/rl/speed.py measures both).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from irl.control import metacontroller
from irl.control.discovered import Discovered
from irl.control.metacontroller import SWITCH_THRESHOLD, MetacontrollerConfig
from irl.models.base import BaseModel
from irl.rl.common import (begin_new_episodes, env_step, episode_keys, episode_stream, fold_in_time, over_batch,
                           sample_actions, split_keys, where_tree)
from irl.spaces import CategoricalActions

# decide(decide_state, e [B, D], keys [B]) -> (decide_state, z [B, Z], log p(z) [B])
Decide = Callable[[object, jax.Array, jax.Array], tuple[object, jax.Array, jax.Array]]


@struct.dataclass
class InternalState:
    """Everything carried between raw steps, with leading batch axes [*B]."""
    env_state: object
    cache: dict  # the base model's step-wise cache
    e: jax.Array  # [*B, D] e_t: the residual stream for the observation the agent now sees
    h: jax.Array  # [*B, G] h_{t-1}: the GRU state before e_t
    z: jax.Array  # [*B, Z] the code in force
    done: jax.Array  # bool [*B]
    success: jax.Array  # bool [*B]
    length: jax.Array  # int32 [*B] raw steps taken
    episode: jax.Array  # int32 [*B] which episode of its slot is running (0 first)


@struct.dataclass
class Trajectory:
    """A fixed-shape batch of episode slots, batch-major: per raw step [B, S, ...]. The [B]
    summaries add up a slot's episodes (with S = T, a slot holds one episode)."""
    decision: jax.Array  # bool [B, S]: a code was chosen before raw step t
    e: jax.Array  # [B, S, D] e_t, what the policy saw (meaningful at decisions)
    z: jax.Array  # [B, S, Z] the code in force at raw step t
    log_prob: jax.Array  # [B, S] log p(z) of the decision at t (meaningful at decisions)
    beta: jax.Array  # [B, S] beta_{t+1} after raw step t
    reward: jax.Array  # [B, S]
    alive: jax.Array  # bool [B, S]: raw step t was taken (by some episode of the slot)
    episode: jax.Array  # int32 [B, S]: which episode of its slot took raw step t
    ended: jax.Array  # bool [B, S]: an episode ended at raw step t
    end_progress: jax.Array  # int32 [B, S]: the task colours it had visited (0 elsewhere)
    succeeded: jax.Array  # bool [B, S]: it ended solved
    returns: jax.Array  # [B] summed reward
    success: jax.Array  # bool [B] some episode of the slot was solved
    length: jax.Array  # int32 [B] raw steps taken
    progress: jax.Array  # int32 [B] task colours visited in the slot's last episode
    obs: jax.Array | None = None  # [B, S+1, O] when recorded
    final: object | None = None  # the environment's last state [B], when recorded

    @property
    def episodes(self) -> jax.Array:
        """int32 [B]: the episodes each slot played."""
        return self.ended.sum(1)


@dataclasses.dataclass(frozen=True)
class InternalEnv:
    model: BaseModel
    mc_cfg: MetacontrollerConfig
    layer: int
    env: object
    env_params: object
    greedy: bool = False  # the action head's mode instead of sampling (for tests)
    action_space: object = CategoricalActions()  # how the base model's action head is read (irl/spaces.py)

    def __post_init__(self):
        if self.mc_cfg.width != self.model.width:
            raise ValueError(f"metacontroller width {self.mc_cfg.width} != base model width {self.model.width}")
        if not 0 <= self.layer <= self.model.n_layers:
            raise ValueError(f"controlled layer must be in 0..{self.model.n_layers}, got {self.layer}")

    @classmethod
    def from_discovered(cls, discovered: Discovered, env, env_params, greedy: bool = False,
                        action_space=CategoricalActions()) -> "InternalEnv":
        return cls(discovered.model, discovered.mc_cfg, discovered.layer, env, env_params, greedy, action_space)

    @staticmethod
    def frozen_params(discovered: Discovered) -> dict:
        """The frozen pytree {"base", "mc", "force_beta_one"} of every seed, [seeds, ...].
        Whether the gate is forced open is data, not program: the beta = 1 baseline runs the
        same compiled program as the metacontroller it is compared with."""
        seeds = jax.tree.leaves(discovered.mc_params)[0].shape[0]
        return {"base": discovered.base_params, "mc": discovered.mc_params,
                "force_beta_one": jnp.full((seeds,), discovered.mc_cfg.force_beta_one)}

    @property
    def max_steps(self) -> int:
        return int(self.env_params.time_limit)

    # -- the raw step both APIs share ------------------------------------------------------

    def start(self, frozen: dict, reset_keys: jax.Array) -> tuple[InternalState, jax.Array]:
        """New episodes for a batch of reset keys [*B]: (state, first observation [*B, O]), the
        observation embedded up to the controlled layer, the GRU state and the code at zero."""
        batch = reset_keys.shape
        obs, env_state = over_batch(lambda k: self.env.reset(k, self.env_params), len(batch))(reset_keys)
        # one slot more than T: the observation after the last step is embedded (never read)
        cache = self.model.init_cache(batch, self.max_steps + 1)
        e, cache = self.model.lower_step(frozen["base"], cache, obs, self.layer)
        return InternalState(
            env_state=env_state, cache=cache, e=e,
            h=jnp.zeros((*batch, self.mc_cfg.gru_size)), z=jnp.zeros((*batch, self.mc_cfg.latent_dim)),
            done=jnp.zeros(batch, bool), success=jnp.zeros(batch, bool), length=jnp.zeros(batch, jnp.int32),
            episode=jnp.zeros(batch, jnp.int32),
        ), obs

    def raw_step(self, frozen: dict, keys: jax.Array, state: InternalState, may_restart: jax.Array | None = None,
                 reset_keys: jax.Array | None = None):
        """One primitive step under the code state.z for a batch [*B] (keys [*B]).

        Slots whose episode ends at this step and that `may_restart` (bool [*B], optional)
        then begin a new episode from `reset_keys` [*B]: a new layout whose first observation
        is embedded in place of the last one, the base model's cache rows restarted, the GRU
        state and the code at zero. Finished episodes keep their state (the cache still
        advances; it is never read again).
        Returns (state, reward [*B], beta_{t+1} [*B], {"obs": o_{t+1} [*B, O], "ended": bool
        [*B] the episode ended at this step, "progress": [*B] its task colours visited,
        "success": bool [*B] it was solved at this step, "restarted": bool [*B]})."""
        base, mc = frozen["base"], frozen["mc"]
        act_keys, env_keys = split_keys(keys)
        controlled = metacontroller.steer(mc, state.z, state.e, self.mc_cfg)
        (logits, _), cache = self.model.upper_step(base, state.cache, controlled, self.layer)
        action = sample_actions(act_keys, logits, self.greedy, self.action_space)
        obs, env_state, reward, done, success = env_step(self.env, self.env_params, env_keys, state.env_state,
                                                         action, state.done)
        alive = ~state.done
        info = {"obs": obs, "ended": alive & done, "progress": env_state.progress, "success": success}
        restart = info["restarted"] = info["ended"] & (False if may_restart is None else may_restart)
        seen = obs
        if may_restart is not None:
            seen, env_state, cache = begin_new_episodes(self.env, self.env_params, self.model, restart, reset_keys,
                                                        obs, env_state, cache)
        e_next, cache = self.model.lower_step(base, cache, seen, self.layer)
        h = metacontroller.gru_step(mc, state.e, state.h)
        beta = jnp.where(frozen["force_beta_one"], 1.0, metacontroller.switch(mc, e_next, h, state.z))
        e_next, h = where_tree(alive, (e_next, h), (state.e, state.h))
        state = state.replace(env_state=env_state, cache=cache, e=e_next, h=h, done=done,
                              success=state.success | success, length=state.length + alive.astype(jnp.int32))
        if may_restart is not None:
            h, z = where_tree(restart, (jnp.zeros_like(state.h), jnp.zeros_like(state.z)), (state.h, state.z))
            state = state.replace(h=h, z=z, done=state.done & ~restart,
                                  episode=state.episode + restart.astype(jnp.int32))
        return state, reward, beta, info

    # -- the abstract-step API (one episode; vmap for a batch) ------------------------------

    def reset(self, frozen: dict, key: jax.Array) -> tuple[jax.Array, InternalState]:
        """A new episode from an unbatched reset key: (e_1 [D], state)."""
        state, _ = self.start(frozen, key)
        return state.e, state

    def step(self, frozen: dict, key: jax.Array, state: InternalState, z: jax.Array):
        """Act with code z [Z] until the switch fires or the episode ends.

        Raw step t samples with fold_in(key, t), t the episode's time, so passing one action
        key for the whole episode reproduces `rollout` (see common.episode_keys).
        Returns (e [D], state, summed reward [], done [], info {"success", "raw_steps"})."""
        state = state.replace(z=jnp.where(state.done, state.z, z))

        def body(carry):
            state, total, _, n = carry
            state, reward, beta, _ = self.raw_step(frozen, jax.random.fold_in(key, state.env_state.t), state)
            return state, total + reward, beta >= SWITCH_THRESHOLD, n + 1

        state, total, _, n = jax.lax.while_loop(lambda c: ~(c[0].done | c[2]), body,
                                                (state, jnp.float32(0.0), jnp.bool_(False), jnp.int32(0)))
        return state.e, state, total, state.done, {"success": state.success, "raw_steps": n}

    # -- the fixed-shape rollout training uses ------------------------------------------------

    def rollout(self, frozen: dict, key: jax.Array, n_slots: int, decide: Decide, decide_state,
                record_obs: bool = False, steps: int | None = None) -> tuple[Trajectory, object]:
        """`n_slots` episode slots in lockstep over `steps` raw steps (default and minimum: the
        time limit T), one lax.scan.

        `decide` is evaluated at every raw step (under vmap a branch would compute both sides
        anyway); its new state and code are kept only where a decision is due: at an episode's
        first step and after beta >= 0.5, in episodes that have not ended. Episode j of a slot
        draws from the slot's `episode_keys` streams through common.episode_stream(., j), its
        raw step at episode time t with fold_in(stream, t): the same numbers a slot that
        played that episode alone would draw. Returns (Trajectory, final decide_state)."""
        steps = self.max_steps if steps is None else steps
        if steps < self.max_steps:
            raise ValueError(f"a rollout needs at least the time limit T={self.max_steps} raw steps, got {steps}")
        last_start = steps - self.max_steps  # the last step at which an episode may begin
        reset_keys, action_keys, policy_keys = episode_keys(key, n_slots)
        state, obs0 = self.start(frozen, reset_keys)
        first_decide_state = decide_state

        def advance(carry, t):
            state, decide_state, due = carry
            decision = due & ~state.done
            clock = state.env_state.t  # the episode's own time
            new_decide_state, z, log_prob = decide(decide_state, state.e,
                                                   fold_in_time(episode_stream(policy_keys, state.episode), clock))
            decide_state = where_tree(decision, new_decide_state, decide_state)
            state = state.replace(z=jnp.where(decision[:, None], z, state.z))
            alive, e_t, z_t, episode = ~state.done, state.e, state.z, state.episode
            restarts = ()
            if last_start > 0:  # a slot whose episode ends before last_start begins a new one
                restarts = (jnp.broadcast_to(t < last_start, alive.shape),
                            episode_stream(reset_keys, state.episode + 1))
            state, reward, beta, info = self.raw_step(
                frozen, fold_in_time(episode_stream(action_keys, state.episode), clock), state, *restarts)
            out = {"decision": decision, "e": e_t, "z": z_t, "log_prob": log_prob, "beta": beta,
                   "reward": reward, "alive": alive, "episode": episode, "ended": info["ended"],
                   "end_progress": jnp.where(info["ended"], info["progress"], 0),
                   "succeeded": info["success"]}
            if record_obs:
                out["obs"] = jnp.where(alive[:, None], info["obs"], 0)  # zeros after the end: render stops there
            decide_state = where_tree(info["restarted"], first_decide_state, decide_state)
            return (state, decide_state, (beta >= SWITCH_THRESHOLD) | info["restarted"]), out

        # A scan over all S steps rather than a loop that stops once every episode has ended:
        # under vmap over runs, a per-run stopping condition would batch the whole carry, the
        # cache position included, turning every cache write into a scatter; and with a
        # batch of episodes one of them usually runs to T anyway (measured: early stopping
        # gained nothing at batch 64 and up).
        carry = (state, decide_state, jnp.ones(n_slots, bool))
        (state, decide_state, _), steps = jax.lax.scan(advance, carry, jnp.arange(steps))
        steps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps)
        obs = jnp.concatenate([obs0[:, None], steps.pop("obs")], axis=1) if record_obs else None
        return Trajectory(**steps, returns=steps["reward"].sum(1), success=state.success, length=state.length,
                          progress=state.env_state.progress, obs=obs,
                          final=state.env_state if record_obs else None), decide_state
