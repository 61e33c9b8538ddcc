"""Supervised residual-stream controllers (SPEC.md section 5): one code per subgoal (its one-hot
through the hypernetwork), the controller written at `layer` of the frozen base model while that
subgoal is active, trained by the expert's action likelihood. Evaluated closed-loop on a task
(the post-training task: never seen in pretraining) by switching codes with the true progress.
The action head is read through the environment's action space (irl/spaces.py): the grid's
moves or the ant's Gaussian torques.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from irl.control import linear
from irl.data import TokenBatch
from irl.models.base import BaseModel
from irl.rollout import Episodes, run_base_model
from irl.spaces import CategoricalActions

N_SUBGOALS = 4


def controlled_action_nll(model: BaseModel, base_params, ctrl_params, cfg: linear.ControllerConfig, layer: int,
                          batch: TokenBatch, action_space=CategoricalActions()) -> tuple[jax.Array, jax.Array]:
    """Mean action NLL and agreement (action_space.metric: the grid's accuracy, the ant's
    squared error) of the base model steered by the true subgoal's controller, over the real
    steps of the rows (one episode each, or several packed)."""
    e = jax.lax.stop_gradient(model.lower(base_params, batch.obs, layer, batch.segments))
    out, _ = model.upper(base_params, linear.steer(ctrl_params, jax.nn.one_hot(batch.subgoal, cfg.code_dim), e, cfg),
                         layer, batch.segments)
    weight = batch.mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    mean = lambda x: (x * weight).sum() / n
    return mean(action_space.nll(out, batch.actions)), mean(action_space.agreement(out, batch.actions))


def train_controllers(model: BaseModel, base_params, tokens: Callable[[jax.Array], TokenBatch], key: jax.Array,
                      layer: int, steps: int, cfg: linear.ControllerConfig, lr: float = 1e-3,
                      weight_decay: float = 0.03, action_space=CategoricalActions()) -> tuple[dict, dict]:
    """Returns (controller params, {"nll", "agreement"} per step)."""
    init_key, data_key = jax.random.split(key)
    params = linear.init(init_key, cfg)
    optimizer = optax.adamw(lr, weight_decay=weight_decay)

    def step(carry, step_key):
        params, opt_state = carry
        loss_fn = lambda p: controlled_action_nll(model, base_params, p, cfg, layer, tokens(step_key), action_space)
        (nll, agreement), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"nll": nll, "agreement": agreement}

    @jax.jit
    def run(params, key):
        (params, _), history = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))
        return params, history

    return run(params, data_key)


def run_controlled(model: BaseModel, base_params, ctrl_params, cfg: linear.ControllerConfig, layer: int, env,
                   env_params, key: jax.Array, n_episodes: int, record: bool = False,
                   action_space=CategoricalActions(), last_states: bool = False,
                   code_of: Callable | None = None) -> Episodes:
    """Closed-loop episodes with the controller of the environment's true current subgoal
    (code_of: state -> the code's index instead, e.g. the subgoal's position in the task)."""
    code_of = env.current_subgoal if code_of is None else code_of

    def steer(e, state):
        return linear.steer(ctrl_params, jax.nn.one_hot(jax.vmap(code_of)(state), cfg.code_dim), e, cfg)

    return run_base_model(model, base_params, env, env_params, key, n_episodes, layer=layer, steer=steer, record=record,
                          action_space=action_space, last_states=last_states)


def codes_as_controllers(decoder_params: dict, codes: jax.Array) -> dict:
    """Controller params whose one-hot code g gives the decoder's controller for codes[g]
    ([n, Z]): one_hot(g) @ (codes @ w1) = codes[g] @ w1 (the bias is kept), so the supervised
    controllers' training and closed-loop evaluation run unchanged on a frozen decoder with a
    table of codes."""
    return {**decoder_params, "w1": codes @ decoder_params["w1"]}


def train_subgoal_codes(model: BaseModel, base_params, decoder_params: dict, decoder_cfg: linear.ControllerConfig,
                        tokens: Callable[[jax.Array], TokenBatch], key: jax.Array, layer: int, steps: int,
                        lr: float = 3e-2, action_space=CategoricalActions(),
                        n_codes: int = N_SUBGOALS, restarts: int = 1) -> tuple[jax.Array, dict]:
    """One code per subgoal (codes [n_codes, Z]; the rows' `subgoal` indexes them) through a
    frozen decoder (a discovered metacontroller's), fitted by the expert's action likelihood
    with the true subgoal's code, as the supervised controllers are: the best that choosing a
    code per subgoal can do with that decoder. `restarts` tables are fitted side by side from
    their own draws on the same batches (Adam is elementwise, so each follows its own loss).
    Returns (codes [restarts, n_codes, Z], {"nll", "agreement"} [steps, restarts])."""
    cfg = dataclasses.replace(decoder_cfg, code_dim=n_codes)
    init_key, key = jax.random.split(key)
    # drawn from the prior the decoder was trained under (zero codes are a saddle of the
    # factored U = A B^T: both factors, and so both gradients, vanish)
    codes = jax.random.normal(init_key, (restarts, n_codes, decoder_cfg.code_dim))
    optimizer = optax.adam(lr)

    def step(carry, step_key):
        codes, opt_state = carry
        batch = tokens(step_key)
        one = lambda c: controlled_action_nll(model, base_params, codes_as_controllers(decoder_params, c), cfg, layer,
                                              batch, action_space)

        def total(c):  # the restarts' losses are independent: the sum's gradient is each one's
            nll, agreement = jax.vmap(one)(c)
            return nll.sum(), (nll, agreement)

        (_, metrics), grads = jax.value_and_grad(total, has_aux=True)(codes)
        updates, opt_state = optimizer.update(grads, opt_state, codes)
        return (optax.apply_updates(codes, updates), opt_state), dict(zip(("nll", "agreement"), metrics))

    (codes, _), history = jax.lax.scan(step, (codes, optimizer.init(codes)), jax.random.split(key, steps))
    return codes, history
