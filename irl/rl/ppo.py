"""Critic-free clipped PPO (SPEC.md section 7), the one learning rule of internal RL and of
every baseline.

The advantage is the whole episode's return standardised over the batch,
A = (R - mean_batch R) / (std_batch R + 1e-3), given to every decision of that episode; the
loss is the clipped ratio objective averaged over the batch's decisions, with no entropy term
and no value function. A method supplies only `log_prob(params, batch) -> [B, K]` over its own
decision layout: B slots of K decisions (`mask` marks the real ones), each decision belonging
to one of the slot's E episodes (`episode` [B, K]; a slot may play several episodes one after
another, irl.rl.internal_env.InternalEnv.rollout).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    lr: float = 3e-5
    weight_decay: float = 0.0
    clip: float = 0.2
    epochs: int = 1  # passes over each batch
    minibatches: int = 1  # gradient steps per pass
    grad_clip: float = 0.0  # global-norm clipping; 0 = none (the paper's)
    advantage_eps: float = 1e-3

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"PPO lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(f"PPO weight_decay and grad_clip must be >= 0, got {self.weight_decay}, {self.grad_clip}")
        if not self.clip > 0:
            raise ValueError(f"PPO clip must be > 0, got {self.clip}")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError(f"PPO epochs and minibatches must be >= 1, got {self.epochs}, {self.minibatches}")

    def check_batch(self, batch: int) -> None:
        if batch < 2:
            raise ValueError(f"PPO needs at least 2 episodes per batch to standardise returns, got {batch}")
        if batch % self.minibatches:
            raise ValueError(f"batch {batch} must be divisible by minibatches {self.minibatches}")


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    adamw = optax.adamw(cfg.lr, weight_decay=cfg.weight_decay)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw) if cfg.grad_clip else adamw


def episode_advantage(returns: jax.Array, eps: float = 1e-3, played: jax.Array | None = None) -> jax.Array:
    """Returns [...] of episodes -> advantages [...], one per episode, standardised over the
    episodes `played` (bool [...], default all; the others get 0)."""
    weight = jnp.ones_like(returns) if played is None else played.astype(returns.dtype)
    n = jnp.maximum(weight.sum(), 1.0)
    mean = (weight * returns).sum() / n
    std = jnp.sqrt((weight * (returns - mean) ** 2).sum() / n)
    return weight * (returns - mean) / (std + eps)


def clipped_loss(log_prob: jax.Array, log_prob_old: jax.Array, advantage: jax.Array, mask: jax.Array,
                 clip: float) -> tuple[jax.Array, dict]:
    """The clipped surrogate, negated, averaged over real decisions.

    log_prob, log_prob_old [B, K]; advantage [B, K], each decision's (or [B, 1]: one for all
    of a slot's decisions); mask bool [B, K]. Padding enters as a log-ratio of 0, whatever
    log-probabilities it holds, so no overflow there can reach the loss or its statistics."""
    log_ratio = jnp.where(mask, log_prob - log_prob_old, 0.0)
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * advantage, jnp.clip(ratio, 1 - clip, 1 + clip) * advantage)
    weight = mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    mean = lambda x: (x * weight).sum() / n
    stats = {
        "clip_fraction": mean(jnp.abs(ratio - 1) > clip),
        "approx_kl": mean((ratio - 1) - log_ratio),  # >= 0, small-step estimate of KL(old || new)
    }
    return -mean(surrogate), stats


def update(params, opt_state, batch: dict, log_prob_fn: Callable, optimizer: optax.GradientTransformation,
           cfg: PPOConfig, key: jax.Array):
    """PPO epochs over one batch of B slots. `batch` is a pytree of arrays with leading [B]
    holding at least "log_prob_old" [B, K], "mask" [B, K], "returns" [B, E] and "played"
    bool [B, E] of each slot's episodes, and "episode" int [B, K], the episode of each
    decision; log_prob_fn(params, minibatch) -> [b, K]. Returns (params, opt_state, stats
    averaged over the gradient steps)."""
    n_slots = batch["returns"].shape[0]
    advantage = episode_advantage(batch["returns"], cfg.advantage_eps, batch["played"])
    batch = dict(batch, advantage=jnp.take_along_axis(advantage, batch["episode"], axis=1))

    def loss_fn(params, minibatch):
        return clipped_loss(log_prob_fn(params, minibatch), minibatch["log_prob_old"], minibatch["advantage"],
                            minibatch["mask"], cfg.clip)

    def gradient_step(carry, minibatch):
        params, opt_state = carry
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, minibatch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), dict(stats, loss=loss,
                                                                        grad_norm=optax.tree.norm(grads))

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, n_slots)
        split = lambda x: x[order].reshape(cfg.minibatches, n_slots // cfg.minibatches, *x.shape[1:])
        return jax.lax.scan(gradient_step, carry, jax.tree.map(split, batch))

    (params, opt_state), stats = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, cfg.epochs))
    return params, opt_state, jax.tree.map(jnp.mean, stats)
