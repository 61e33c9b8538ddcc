"""How much the ant's pretraining data says about the subgoal: per step, the information the
expert's sampled torques carry about the colour it seeks, given the physical state.

A base model learns the subgoal only as far as it helps predict the torques. The most it can
gain in action NLL per step by knowing which colour is sought is the conditional mutual
information I(a; c | state) between the torques and the colour: with the colour uniform over
the four (less where the history narrows it down), I = E_c E_{a ~ pi_c}[log pi_c(a) - log mean_c' pi_c'(a)], where pi_c is the expert
with colour c as its target (the same state, the direction features of c's path). It is set
beside the entropy of the expert's torques, the NLL no model of its samples can beat.

tanh is a bijection, so the information is computed on the Gaussians before it; the entropy
is the torques' own, in the space the base model's Gaussian head scores (irl/spaces.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.training.distribution import TanhBijector
from jax.scipy.stats import norm

from irl.envs.ant_pinpad import N_COLORS, AntPinpadState, current_subgoal
from irl.experts.ant_directions import direction_features
from irl.experts.ant_expert import AntExpert, expert_observation


def tanh_log_det(u: jax.Array) -> jax.Array:
    """log |d tanh(u) / du|, summed over the last axis (brax's bijector, as the expert squashes)."""
    return jnp.sum(TanhBijector().forward_log_det_jacobian(u), axis=-1)


def information_and_entropy(loc: jax.Array, scale: jax.Array, true: jax.Array, key: jax.Array,
                            samples: int) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo estimates, in nats, from `samples` draws per colour: the mutual information
    between a tanh-Gaussian sample and its colour c (uniform over the C rows of loc, scale
    [C, A]), and the entropy of the tanh-squashed torques of colour `true`."""
    u = loc[:, None] + scale[:, None] * jax.random.normal(key, (loc.shape[0], samples, loc.shape[-1]))  # [C, K, A]
    log_p = norm.logpdf(u[:, :, None], loc[None, None], scale[None, None]).sum(-1)  # [C, K, C']: log pi_c'(u_ck)
    own = jnp.diagonal(log_p, axis1=0, axis2=2).T  # [C, K]: log pi_c(u_ck)
    mixture = jax.nn.logsumexp(log_p, axis=-1) - jnp.log(loc.shape[0])
    information = jnp.mean(own - mixture)
    entropy = -jnp.mean(own[true] - tanh_log_det(u[true]))
    return information, entropy


def with_target(state: AntPinpadState, colour: jax.Array) -> AntPinpadState:
    """The same state with `colour` as the colour sought now."""
    return state.replace(task=state.task.at[jnp.minimum(state.progress, state.task_len - 1)].set(colour))


def step_signal(expert: AntExpert, obs: jax.Array, state: AntPinpadState, key: jax.Array,
                samples: int) -> tuple[jax.Array, jax.Array]:
    """information_and_entropy of the expert at one state (unbatched obs [41])."""
    colours = jnp.arange(N_COLORS)
    features = jax.vmap(lambda c: direction_features(with_target(state, c)))(colours)
    loc, scale = expert.gaussian(jnp.concatenate([jnp.broadcast_to(obs, (N_COLORS, obs.shape[-1])), features], -1))
    return information_and_entropy(loc, scale, current_subgoal(state), key, samples)


def measure(expert: AntExpert, world, world_params, key: jax.Array, n_episodes: int, samples: int) -> dict:
    """Means over every step taken of n_episodes, the expert acting with sampled torques (as
    in the pretraining data): nats per step of I(a; c | state) and of the torques' entropy."""
    limit = int(world_params.time_limit)
    run = jax.jit(lambda k, p: _sums(expert, world, p, k, n_episodes, samples, limit))
    information, entropy, steps = jax.device_get(run(key, world_params))
    return {"information_nats_per_step": float(information / steps), "entropy_nats_per_step": float(entropy / steps),
            "steps": int(steps), "episodes": n_episodes, "samples_per_colour_and_step": samples}


def _sums(expert, world, world_params, key, n_episodes, samples, limit):
    """measure's sums over the steps taken in `limit` steps: (information, entropy, steps)."""
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(reset_key, n_episodes), world_params)
    policy = expert.policy(deterministic=False)
    signal = jax.vmap(lambda o, s, k: step_signal(expert, o, s, k, samples))

    def step(carry, t):
        obs, state, done, sums = carry
        act_key, signal_key = jax.random.split(jax.random.fold_in(run_key, t))
        information, entropy = signal(obs, state, jax.random.split(signal_key, n_episodes))
        alive = ~done
        sums = (sums[0] + jnp.sum(jnp.where(alive, information, 0.0)), sums[1] + jnp.sum(jnp.where(alive, entropy, 0.0)),
                sums[2] + jnp.sum(alive))
        action = policy(jax.vmap(expert_observation)(obs, state), act_key)
        obs, state, _, next_done, _ = jax.vmap(world.step, in_axes=(None, 0, 0, None))(None, state, action, world_params)
        return (obs, state, done | next_done, sums), None

    zero = jnp.zeros(())
    (_, _, _, sums), _ = jax.lax.scan(step, (obs, state, jnp.zeros(n_episodes, bool), (zero, zero, zero)),
                                      jnp.arange(limit))
    return sums
