"""Supervised residual-stream controllers (SPEC.md section 5): one code per subgoal (its one-hot
through the hypernetwork), the controller written at `layer` of the frozen base model while that
subgoal is active, trained by the expert's action likelihood. Evaluated closed-loop on a task
(the post-training task: never seen in pretraining) by switching codes with the true progress.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from irl.control import linear
from irl.data import ExpertBatch
from irl.envs.grid_pinpad import current_subgoal
from irl.models.base import BaseModel
from irl.rollout import Episodes, run_base_model

N_SUBGOALS = 4


def controlled_action_nll(model: BaseModel, base_params, ctrl_params, cfg: linear.ControllerConfig, layer: int,
                          batch: ExpertBatch) -> tuple[jax.Array, jax.Array]:
    """Mean action NLL and accuracy of the base model steered by the true subgoal's controller."""
    e = jax.lax.stop_gradient(model.lower(base_params, batch.obs[:, :-1], layer))
    a, b = linear.factors(ctrl_params, jax.nn.one_hot(batch.subgoal, cfg.code_dim), cfg)
    logits, _ = model.upper(base_params, linear.apply(e, a, b), layer)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), batch.actions[..., None], -1)[..., 0]
    weight = batch.mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    return (nll * weight).sum() / n, ((jnp.argmax(logits, -1) == batch.actions) * weight).sum() / n


def train_controllers(model: BaseModel, base_params, episodes: Callable[[jax.Array], ExpertBatch], key: jax.Array,
                      layer: int, steps: int, cfg: linear.ControllerConfig, lr: float = 1e-3,
                      weight_decay: float = 0.03) -> tuple[dict, dict]:
    """Returns (controller params, {"nll", "accuracy"} per step)."""
    init_key, data_key = jax.random.split(key)
    params = linear.init(init_key, cfg)
    optimizer = optax.adamw(lr, weight_decay=weight_decay)

    def step(carry, step_key):
        params, opt_state = carry
        loss_fn = lambda p: controlled_action_nll(model, base_params, p, cfg, layer, episodes(step_key))
        (nll, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"nll": nll, "accuracy": accuracy}

    @jax.jit
    def run(params, key):
        (params, _), history = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))
        return params, history

    return run(params, data_key)


def run_controlled(model: BaseModel, base_params, ctrl_params, cfg: linear.ControllerConfig, layer: int, env,
                   env_params, key: jax.Array, n_episodes: int, record: bool = False) -> Episodes:
    """Closed-loop episodes with the controller of the environment's true current subgoal."""
    def steer(e, state):
        a, b = linear.factors(ctrl_params, jax.nn.one_hot(jax.vmap(current_subgoal)(state), cfg.code_dim), cfg)
        return linear.apply(e, a, b)

    return run_base_model(model, base_params, env, env_params, key, n_episodes, layer=layer, steer=steer, record=record)
