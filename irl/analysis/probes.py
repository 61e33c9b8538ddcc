"""Linear probes of the residual stream: softmax(W_l e_{t,l} + b_l) predicts the current
subgoal, one probe per layer l = 0..L of a frozen base model (SPEC.md section 5).

All layers' probes train together (their losses are independent, so this equals training them
one by one) on fresh expert episodes every step.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from irl.data import ExpertBatch
from irl.models.base import BaseModel

N_SUBGOALS = 4


def residual_streams(model: BaseModel, params, obs: jax.Array) -> jax.Array:
    """obs [..., T, obs_size] -> e_l for every layer, [L+1, ..., T, D]."""
    return jnp.stack([model.lower(params, obs, layer) for layer in range(model.n_layers + 1)])


def init_probes(key: jax.Array, n_layers: int, width: int, n_classes: int = N_SUBGOALS) -> dict:
    return {"w": jax.random.normal(key, (n_layers + 1, width, n_classes)) * 0.01,
            "b": jnp.zeros((n_layers + 1, n_classes))}


def probe_log_probs(probes: dict, streams: jax.Array) -> jax.Array:
    """streams [L+1, ..., D] -> log-probabilities [L+1, ..., classes]."""
    logits = jnp.einsum("l...d,ldc->l...c", streams, probes["w"])
    return jax.nn.log_softmax(logits + probes["b"].reshape(probes["b"].shape[0], *([1] * (logits.ndim - 2)), -1))


def probe_loss(probes: dict, streams: jax.Array, labels: jax.Array, mask: jax.Array):
    """Mean cross-entropy per layer, summed over layers; and accuracy per layer [L+1]."""
    log_p = probe_log_probs(probes, streams)
    nll = -jnp.take_along_axis(log_p, labels[None, ..., None], -1)[..., 0]
    weight = mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    per_layer = (nll * weight).reshape(nll.shape[0], -1).sum(-1) / n
    correct = (jnp.argmax(log_p, -1) == labels[None]) * weight
    return per_layer.sum(), correct.reshape(correct.shape[0], -1).sum(-1) / n


def train_probes(model: BaseModel, base_params, episodes: Callable[[jax.Array], ExpertBatch], key: jax.Array,
                 steps: int, lr: float = 1e-3, weight_decay: float = 0.0) -> tuple[dict, jax.Array]:
    """Train probes for `steps` steps on fresh episodes; returns (probes, train accuracy [steps, L+1])."""
    init_key, data_key = jax.random.split(key)
    probes = init_probes(init_key, model.n_layers, model.width)
    optimizer = optax.adamw(lr, weight_decay=weight_decay)

    def step(carry, step_key):
        probes, opt_state = carry
        batch = episodes(step_key)
        streams = jax.lax.stop_gradient(residual_streams(model, base_params, batch.obs[:, :-1]))
        (_, accuracy), grads = jax.value_and_grad(probe_loss, has_aux=True)(probes, streams, batch.subgoal, batch.mask)
        updates, opt_state = optimizer.update(grads, opt_state, probes)
        return (optax.apply_updates(probes, updates), opt_state), accuracy

    @jax.jit
    def run(probes, key):
        carry = (probes, optimizer.init(probes))
        (probes, _), accuracy = jax.lax.scan(step, carry, jax.random.split(key, steps))
        return probes, accuracy

    return run(probes, data_key)


def segment_time(progress: jax.Array, colors_per_subgoal: int = 2) -> jax.Array:
    """Steps since the current subgoal began, from progress [..., T] (colours visited so far).
    A subgoal begins when progress reaches a multiple of colors_per_subgoal (the grid's colour
    pairs: 2; the ant's single colours: 1)."""
    subgoal_index = progress // colors_per_subgoal
    t = jnp.arange(progress.shape[-1])
    changed = jnp.concatenate([jnp.ones_like(subgoal_index[..., :1], bool),
                               subgoal_index[..., 1:] != subgoal_index[..., :-1]], axis=-1)
    start = jax.lax.cummax(jnp.where(changed, t, 0), axis=progress.ndim - 1)
    return t - start


def evaluate_probes(model: BaseModel, base_params, probes: dict, batch: ExpertBatch, max_time: int = 20,
                    colors_per_subgoal: int = 2) -> dict:
    """Held-out accuracy per layer [L+1], and the mean probability of the true subgoal by the
    time since the subgoal began, [L+1, max_time] (NaN where no step has that time)."""
    streams = residual_streams(model, base_params, batch.obs[:, :-1])
    _, accuracy = probe_loss(probes, streams, batch.subgoal, batch.mask)
    p_true = jnp.exp(jnp.take_along_axis(probe_log_probs(probes, streams), batch.subgoal[None, ..., None], -1)[..., 0])
    time = segment_time(batch.progress, colors_per_subgoal)
    bins = jax.nn.one_hot(time, max_time) * batch.mask[..., None]  # [B, T, max_time]
    count = bins.sum((0, 1))
    by_time = jnp.einsum("lbt,btk->lk", p_true, bins) / jnp.where(count > 0, count, jnp.nan)
    return {"accuracy_by_layer": accuracy, "p_true_by_time": by_time, "count_by_time": count}
