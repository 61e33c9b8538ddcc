"""The environment internal RL acts in (SPEC.md section 7): actions are latent codes z, the
observation is the residual stream e at the controlled layer of the frozen base model.

Frozen: the base model, the metacontroller's GRU, switching unit and decoder (`frozen` is the
params pytree {"base": ..., "mc": ...} of one pretrained model). One raw step at time t, with
the code z in force, follows the metacontroller's training-time order exactly
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
- `rollout(frozen, key, n_episodes, decide, decide_state)`: the form training uses, one
  `lax.scan` over the T raw steps of a batch of episodes in lockstep, which queries the
  policy at every step and keeps its answer (and its state) only where a decision is due.
The second is the faster one under vmap on CPU (irl/rl/speed.py measures both).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from irl.control import linear, metacontroller
from irl.control.discovered import Discovered
from irl.control.metacontroller import SWITCH_THRESHOLD, MetacontrollerConfig
from irl.models.base import BaseModel
from irl.rl.common import (env_step, episode_keys, fold_in_time, over_batch, sample_actions, split_keys,
                           where_tree)
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


@struct.dataclass
class Trajectory:
    """A fixed-shape batch of internal-RL episodes, batch-major: per raw step [B, T, ...]."""
    decision: jax.Array  # bool [B, T]: a code was chosen before raw step t
    e: jax.Array  # [B, T, D] e_t, what the policy saw (meaningful at decisions)
    z: jax.Array  # [B, T, Z] the code in force at raw step t
    log_prob: jax.Array  # [B, T] log p(z) of the decision at t (meaningful at decisions)
    beta: jax.Array  # [B, T] beta_{t+1} after raw step t
    reward: jax.Array  # [B, T]
    alive: jax.Array  # bool [B, T]: raw step t was taken (the episode had not ended)
    returns: jax.Array  # [B] summed reward
    success: jax.Array  # bool [B]
    length: jax.Array  # int32 [B] raw steps
    progress: jax.Array  # int32 [B] task colours visited
    obs: jax.Array | None = None  # [B, T+1, O] when recorded
    final: object | None = None  # the environment's last state [B], when recorded


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
        """The frozen pytree {"base", "mc"} of every seed, [seeds, ...]."""
        return {"base": discovered.base_params, "mc": discovered.mc_params}

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
        ), obs

    def raw_step(self, frozen: dict, keys: jax.Array, state: InternalState):
        """One primitive step under the code state.z for a batch [*B] (keys [*B]).
        Returns (state, reward [*B], beta_{t+1} [*B], obs_{t+1} [*B, O]). Finished
        episodes keep their state (the cache still advances; it is never read again)."""
        base, mc = frozen["base"], frozen["mc"]
        act_keys, env_keys = split_keys(keys)
        a, b = metacontroller.controller(mc, state.z, self.mc_cfg)
        (logits, _), cache = self.model.upper_step(base, state.cache, linear.apply(state.e, a, b), self.layer)
        action = sample_actions(act_keys, logits, self.greedy, self.action_space)
        obs, env_state, reward, done, success = env_step(self.env, self.env_params, env_keys, state.env_state,
                                                         action, state.done)
        e_next, cache = self.model.lower_step(base, cache, obs, self.layer)
        h = metacontroller.gru_step(mc, state.e, state.h)
        beta = metacontroller.switch(mc, e_next, h, state.z)
        if self.mc_cfg.force_beta_one:
            beta = jnp.ones_like(beta)
        alive = ~state.done
        e_next, h = where_tree(alive, (e_next, h), (state.e, state.h))
        state = state.replace(env_state=env_state, cache=cache, e=e_next, h=h, done=done,
                              success=state.success | success, length=state.length + alive.astype(jnp.int32))
        return state, reward, beta, obs

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

    def rollout(self, frozen: dict, key: jax.Array, n_episodes: int, decide: Decide, decide_state,
                record_obs: bool = False) -> tuple[Trajectory, object]:
        """`n_episodes` episodes in lockstep over T = time_limit raw steps (one lax.scan).

        `decide` is evaluated at every raw step (under vmap a branch would compute both sides
        anyway); its new state and code are kept only where a decision is due: at t = 0 and
        after beta >= 0.5, in episodes that have not ended. Returns (Trajectory, final
        decide_state)."""
        reset_keys, action_keys, policy_keys = episode_keys(key, n_episodes)
        state, obs0 = self.start(frozen, reset_keys)

        def advance(carry, t):
            state, decide_state, due = carry
            decision = due & ~state.done
            new_decide_state, z, log_prob = decide(decide_state, state.e, fold_in_time(policy_keys, t))
            decide_state = where_tree(decision, new_decide_state, decide_state)
            state = state.replace(z=jnp.where(decision[:, None], z, state.z))
            alive, e_t = ~state.done, state.e
            state, reward, beta, obs = self.raw_step(frozen, fold_in_time(action_keys, t), state)
            out = {"decision": decision, "e": e_t, "z": state.z, "log_prob": log_prob, "beta": beta,
                   "reward": reward, "alive": alive}
            if record_obs:
                out["obs"] = jnp.where(alive[:, None], obs, 0)  # zeros after the end: render stops there
            return (state, decide_state, beta >= SWITCH_THRESHOLD), out

        # A scan over all T steps rather than a loop that stops once every episode has ended:
        # under vmap over runs, a per-run stopping condition would batch the whole carry, the
        # cache position included, turning every cache write into a scatter; and with a
        # batch of episodes one of them usually runs to T anyway (measured: early stopping
        # gained nothing at batch 64 and up).
        carry = (state, decide_state, jnp.ones(n_episodes, bool))
        (state, decide_state, _), steps = jax.lax.scan(advance, carry, jnp.arange(self.max_steps))
        steps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps)
        obs = jnp.concatenate([obs0[:, None], steps.pop("obs")], axis=1) if record_obs else None
        return Trajectory(**steps, returns=steps["reward"].sum(1), success=state.success, length=state.length,
                          progress=state.env_state.progress, obs=obs,
                          final=state.env_state if record_obs else None), decide_state
