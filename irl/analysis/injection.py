"""The latent-code injection analysis of the paper (AntPinpad): do a metacontroller's codes mean
"go to colour X", and do they compose into transitions never seen in pretraining?

1. Colour codes. The metacontroller runs with codes drawn from its prior N(0, I) (a new code
   at every switch, beta >= 0.5) on fresh layouts. Episodes whose torso enters exactly one
   colour cell are kept; the code in force at that entry is a code of that colour, and a
   colour's code is the mean of its collected codes.
2. (a) Injection at a fixed time. New episodes run with prior codes; at step `switch_step`
   the code of colour X is forced and held to the end. Measured: of the episodes still
   running at the switch that have not entered X yet, the fraction whose torso enters X
   afterwards, against the same episodes (the same keys) without the injection
   (paper: 23% -> 36%).
   (b) An unseen transition. Right after the torso first enters colour `first`, the code of
   colour `then` is forced and held; `first` -> `then` is a transition no pretraining task
   makes (0 -> 1). Measured: of the episodes that reach `first` and go on, the fraction that
   enter `then` afterwards, with and without the injection (paper: 10% -> 24%).

The world judges "any pretraining task", so a first colour never fails an episode; a colour
counts as entered whether or not the entry ends the episode. Until the injection the two runs
of a pair are the same computation with the same keys, so they part only where the code does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from irl.control.metacontroller import SWITCH_THRESHOLD
from irl.envs.ant_pinpad import N_COLORS
from irl.rl.common import episode_keys, fold_in_time, standard_normal
from irl.rl.internal_env import InternalEnv


@struct.dataclass
class Injection:
    """When to force `code` [Z] (then held to the end): at step `step`, or right after the
    torso first enters colour `after`; -1 turns either off. Arrays, so one compiled rollout
    serves every injection."""
    code: jax.Array
    step: jax.Array
    after: jax.Array

    @classmethod
    def make(cls, code, step: int = -1, after: int = -1) -> "Injection":
        return cls(jnp.asarray(code, jnp.float32), jnp.int32(step), jnp.int32(after))

    def fires(self, t: jax.Array, seen: jax.Array) -> jax.Array:
        """bool [N] at step t, given the colours entered so far seen [N, C]."""
        after = (self.after >= 0) & seen[:, jnp.maximum(self.after, 0)]
        return (t == self.step) | after


@struct.dataclass
class CodedEpisodes:
    entered: jax.Array  # int32 [N, T]: the colour whose cell the torso entered at step t (-1: none)
    z: jax.Array  # [N, T, Z]: the code in force during step t
    alive: jax.Array  # bool [N, T]: step t was taken
    xy: jax.Array  # [N, T+1, 2]: the torso's position
    final: object  # the world's last state [N], for drawing


def entered_colour(before, after) -> jax.Array:
    """int32 []: the colour whose cell the torso entered between two states (-1: none)."""
    moved = jnp.any(after.cell != before.cell)
    on = jnp.all(after.colors == after.cell, axis=-1)  # [C]
    return jnp.where(moved & jnp.any(on), jnp.argmax(on), -1).astype(jnp.int32)


def run(env: InternalEnv, frozen: dict, key: jax.Array, n_episodes: int,
        inject: Injection | None = None) -> CodedEpisodes:
    """n_episodes episodes of the metacontroller with prior codes, in lockstep over T steps;
    where `inject` fires, its code is forced and held to the end (None: never). Jittable
    (env and n_episodes static)."""
    reset_keys, action_keys, policy_keys = episode_keys(key, n_episodes)
    state, _ = env.start(frozen, reset_keys)
    latent = env.mc_cfg.latent_dim
    inject = Injection.make(jnp.zeros(latent)) if inject is None else inject

    def advance(carry, t):
        state, due, held, seen = carry
        alive = ~state.done
        prior = standard_normal(fold_in_time(policy_keys, t), latent)
        z = jnp.where((due & ~held)[:, None], prior, state.z)
        force = inject.fires(t, seen) & ~held & alive
        z = jnp.where(force[:, None], inject.code[None], z)
        before = state.env_state
        state, _, beta, _ = env.raw_step(frozen, fold_in_time(action_keys, t), state.replace(z=z))
        entered = jnp.where(alive, jax.vmap(entered_colour)(before, state.env_state), -1)
        seen = seen | jax.nn.one_hot(entered, N_COLORS, dtype=bool)
        out = {"entered": entered, "z": z, "alive": alive, "xy": state.env_state.physics.qpos[:, :2]}
        return (state, beta >= SWITCH_THRESHOLD, held | force, seen), out

    start_xy = state.env_state.physics.qpos[:, :2]
    false = jnp.zeros(n_episodes, bool)
    carry = (state, ~false, false, jnp.zeros((n_episodes, N_COLORS), bool))
    (state, *_), out = jax.lax.scan(advance, carry, jnp.arange(env.max_steps))
    out = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)
    return CodedEpisodes(entered=out["entered"], z=out["z"], alive=out["alive"],
                         xy=jnp.concatenate([start_xy[:, None], out["xy"]], axis=1), final=state.env_state)


def colour_codes(episodes: CodedEpisodes) -> tuple[np.ndarray, np.ndarray]:
    """(codes [C, Z] (NaN where no episode entered the colour), counts [C]) from the episodes
    that entered exactly one colour cell."""
    entered, z = np.asarray(episodes.entered), np.asarray(episodes.z)
    single = (entered >= 0).sum(1) == 1
    episode, step = np.nonzero((entered >= 0) & single[:, None])
    colours = entered[episode, step]
    counts = np.bincount(colours, minlength=N_COLORS)
    codes = np.full((N_COLORS, z.shape[-1]), np.nan, np.float32)
    for c in range(N_COLORS):
        if counts[c]:
            codes[c] = z[episode[colours == c], step[colours == c]].mean(0)
    return codes, counts


def first_entry(entered: np.ndarray, colour: int) -> np.ndarray:
    """int [N]: the first step at which the torso entered `colour` (T: never)."""
    hits = np.asarray(entered) == colour
    return np.where(hits.any(1), hits.argmax(1), hits.shape[1])


def reach_after_step(plain: CodedEpisodes, injected: CodedEpisodes, colour: int, step: int) -> dict:
    """(a): of the episodes alive at `step` and not yet in `colour`, those entering it from
    `step` on, without and with the injection."""
    eligible = np.asarray(plain.alive)[:, step] & (first_entry(plain.entered, colour) >= step)
    reached = lambda eps: (np.asarray(eps.entered)[:, step:] == colour).any(1)
    return _rates(eligible, reached(plain), reached(injected))


def reach_after_colour(plain: CodedEpisodes, injected: CodedEpisodes, first: int, then: int) -> dict:
    """(b): of the episodes that enter `first` and go on (the code is forced at the next step,
    so an episode that the entry ends never carries it), those entering `then` afterwards."""
    steps = np.asarray(plain.entered).shape[1]
    t0 = first_entry(plain.entered, first)
    next_step = np.minimum(t0 + 1, steps - 1)
    eligible = (t0 + 1 < steps) & np.asarray(plain.alive)[np.arange(len(t0)), next_step]
    after = np.arange(steps)[None] > t0[:, None]
    reached = lambda eps: ((np.asarray(eps.entered) == then) & after).any(1)
    return _rates(eligible, reached(plain), reached(injected))


def _rates(eligible: np.ndarray, plain: np.ndarray, injected: np.ndarray) -> dict:
    n = int(eligible.sum())
    rate = lambda hit: float(hit[eligible].mean()) if n else None
    return {"episodes": n, "without_injection": rate(plain), "with_injection": rate(injected)}
