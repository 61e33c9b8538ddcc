"""A metacontroller fitted with the true subgoals, which discovery never sees: what internal RL
would have to work with if discovery found one code per subgoal and switched on the subgoal
boundaries: the best case discovery could hand to internal RL.

The codes are laid out for the prior internal RL starts from (layout "orthant"). A segment's
code is one draw of N(0, I), held for the segment, whose signs on its first `code_bits(n)`
dimensions spell the subgoal's index in binary: every subgoal owns a union of orthants of equal
prior mass (1/4 for the grid's four), so a code drawn from the prior names each subgoal
equally often, and the decoder learns the controller of every code in its subgoal's region.
Layout "one_hot" gives each subgoal one fixed code, as the supervised controllers have.

The switching unit and its GRU learn to fire on the first step of every new subgoal (binary
cross-entropy, reading e_t, h_{t-1} and the previous segment's code, as the metacontroller's
switch does). All three are the metacontroller's own modules (irl/control/metacontroller.py),
so the result exports as a discovered metacontroller (irl.discovery.export) and every later
stage runs on it unchanged: the prior-code chain, the code oracle, internal RL.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from irl.control import linear
from irl.control import metacontroller as mc
from irl.data import TokenBatch, episode_tokens
from irl.models.base import BaseModel
from irl.spaces import CategoricalActions

LAYOUTS = ("orthant", "one_hot")
TRAINED = ("decoder", "gru", "switch")  # the modules fitted here; the encoder and embedder are never used


def code_bits(n_subgoals: int) -> int:
    """Latent dimensions whose signs name one of n_subgoals."""
    if n_subgoals < 2:
        raise ValueError(f"need at least 2 subgoals to name, got {n_subgoals}")
    return math.ceil(math.log2(n_subgoals))


def check_layout(latent_dim: int, n_subgoals: int, layout: str) -> int:
    """ValueError unless `layout` can name n_subgoals in latent_dim dimensions; else the
    dimensions it uses."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    dims = code_bits(n_subgoals) if layout == "orthant" else n_subgoals
    if dims > latent_dim:
        raise ValueError(f"{n_subgoals} subgoals need {dims} latent dimensions, the code has {latent_dim}")
    return dims


def segment_starts(subgoal: jax.Array) -> jax.Array:
    """bool [B, T]: t = 0 and every step whose subgoal differs from the step before."""
    change = subgoal[:, 1:] != subgoal[:, :-1]
    return jnp.concatenate([jnp.ones_like(subgoal[:, :1], bool), change], axis=1)


def subgoal_codes(subgoal: jax.Array, key: jax.Array, latent_dim: int, n_subgoals: int,
                  layout: str = "orthant", scale: float = 3.0) -> jax.Array:
    """z [B, T, Z] for subgoal labels int [B, T].

    layout "orthant": one N(0, I) draw per segment, held over the segment, with the signs of
    its first code_bits(n_subgoals) entries spelling the subgoal (bit i positive where bit i of
    the index is 1). "one_hot": scale times the subgoal's one-hot, one fixed point per
    subgoal, as the supervised controllers' codes (irl/analysis/supervised_control.py), which
    the prior rarely draws."""
    bits = check_layout(latent_dim, n_subgoals, layout)
    if layout == "one_hot":
        return scale * jax.nn.one_hot(subgoal, latent_dim)
    steps = subgoal.shape[1]
    start = jax.lax.cummax(jnp.where(segment_starts(subgoal), jnp.arange(steps), 0), axis=1)
    draws = jax.random.normal(key, (*subgoal.shape, latent_dim))
    z = jnp.take_along_axis(draws, start[..., None], axis=1)
    signs = 2.0 * ((subgoal[..., None] >> jnp.arange(bits)) & 1) - 1.0
    return z.at[..., :bits].set(jnp.abs(z[..., :bits]) * signs)


def subgoal_of_codes(z: jax.Array, n_subgoals: int) -> jax.Array:
    """The subgoal index int [...] an orthant code z [..., Z] names (the inverse of subgoal_codes)."""
    bits = code_bits(n_subgoals)
    return jnp.sum((z[..., :bits] > 0).astype(jnp.int32) << jnp.arange(bits), axis=-1)


def teacher_forced(params: dict, cfg: mc.MetacontrollerConfig, model: BaseModel, base_params, tokens: TokenBatch,
                   key: jax.Array, layer: int, n_subgoals: int, layout: str = "orthant") -> tuple[jax.Array, jax.Array]:
    """The base model steered by each segment's subgoal code (subgoal_codes, drawn with key):
    (action-head output [B, T, ...], the switch's beta_t [B, T] reading e_t, h_{t-1} and the
    code in force at t - 1)."""
    e = jax.lax.stop_gradient(model.lower(base_params, tokens.obs, layer))
    z = subgoal_codes(tokens.subgoal, key, cfg.latent_dim, n_subgoals, layout)
    out, _ = model.upper(base_params, mc.steer(params, z, e, cfg), layer)
    z_prev = jnp.concatenate([jnp.zeros_like(z[:, :1]), z[:, :-1]], axis=1)
    return out, mc.switch(params, e, mc.gru_sequence(params, e), z_prev)


def losses(params: dict, cfg: mc.MetacontrollerConfig, model: BaseModel, base_params, tokens: TokenBatch,
           key: jax.Array, layer: int, n_subgoals: int, action_space=CategoricalActions(),
           layout: str = "orthant") -> dict:
    """{"action_nll": of the expert's actions under the subgoal's code, "switch_bce": of the
    switch against the segment starts (t >= 1), "switch_accuracy"}, each a mean over real steps."""
    out, beta = teacher_forced(params, cfg, model, base_params, tokens, key, layer, n_subgoals, layout)
    beta = jnp.clip(beta, 1e-6, 1 - 1e-6)
    real = tokens.mask.astype(jnp.float32)
    after_first = real.at[:, 0].set(0.0)
    mean = lambda x, w: (x * w).sum() / jnp.maximum(w.sum(), 1.0)
    target = segment_starts(tokens.subgoal).astype(jnp.float32)
    bce = -(target * jnp.log(beta) + (1 - target) * jnp.log1p(-beta))
    correct = ((beta >= mc.SWITCH_THRESHOLD) == (target > 0)).astype(jnp.float32)
    return {"action_nll": mean(action_space.nll(out, tokens.actions), real), "switch_bce": mean(bce, after_first),
            "switch_accuracy": mean(correct, after_first)}


def fit(cfg: mc.MetacontrollerConfig, model: BaseModel, base_params, tokens: Callable[[jax.Array], TokenBatch],
        key: jax.Array, layer: int, steps: int, n_subgoals: int, lr: float = 3e-3, weight_decay: float = 0.03,
        action_space=CategoricalActions(), layout: str = "orthant") -> tuple[dict, dict]:
    """Fit the decoder, GRU and switch of a fresh metacontroller on `steps` batches
    tokens(key) of one base model's params. Returns (metacontroller params, per-step losses)."""
    init_key, data_key = jax.random.split(key)
    params = mc.init(init_key, cfg)
    trained = {name: params[name] for name in TRAINED}
    optimizer = optax.adamw(lr, weight_decay=weight_decay)

    def objective(trained, step_key):
        batch_key, code_key = jax.random.split(step_key)
        terms = losses({**params, **trained}, cfg, model, base_params, tokens(batch_key), code_key, layer,
                       n_subgoals, action_space, layout)
        return terms["action_nll"] + terms["switch_bce"], terms

    def step(carry, step_key):
        trained, opt_state = carry
        grads, terms = jax.grad(objective, has_aux=True)(trained, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, trained)
        return (optax.apply_updates(trained, updates), opt_state), terms

    (trained, _), history = jax.lax.scan(step, (trained, optimizer.init(trained)), jax.random.split(data_key, steps))
    return {**params, **trained}, history


def subgoal_code_nll(config, discoverer, steps: int, lr: float, scale: float) -> tuple[dict, dict]:
    """The action NLL that codes naming the true subgoal reach through a fresh decoder of the
    metacontroller's shape (experiments/subgoal_code_nll.py): each step's code is `scale` times
    the one-hot of its subgoal; the decoder is fitted for `steps` of discoverer's (an
    irl.discovery.Discoverer) training batches on discovery's NLL terms, with no KL, and
    measured on the held-out episodes discovery's own measures use (Discoverer.held_out).
    Returns (decoder params, {"controlled_action_nll", "second_view_action_nll" where the
    config has a second view}). First model."""
    from irl.analysis.supervised_control import N_SUBGOALS
    from irl.discovery import action_measures, has_second_view, take

    cfg = discoverer.method("metacontroller").mc_cfg
    base = take(discoverer.base_params, 0)
    optimizer = optax.adamw(lr, weight_decay=config.optim.weight_decay)
    second = has_second_view(config)

    def nlls(params, tokens, key):
        z = subgoal_codes(tokens.subgoal, key, cfg.latent_dim, N_SUBGOALS, "one_hot", scale)
        e = jax.lax.stop_gradient(discoverer.model.lower(base, tokens.obs, discoverer.layer))
        out, _ = discoverer.model.upper(base, mc.steer(params, z, e, cfg), discoverer.layer)
        controlled = action_measures(discoverer.action_space, out, tokens, config.train.action_targets)["action_nll"]
        view = discoverer.second_view(params, cfg, base, z, tokens, jax.random.fold_in(key, 2)) if second else 0.0
        return controlled + config.train.view_weight * view, (controlled, view)

    @jax.jit
    def train(params, key):
        def step(carry, step_key):
            params, opt_state = carry
            grads = jax.grad(lambda p: nlls(p, episode_tokens(discoverer.expert(step_key)), step_key)[0])(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))[0][0]

    key = jax.random.key(config.seed)
    params = train({"decoder": linear.init(jax.random.fold_in(key, 0), cfg.decoder)}, jax.random.fold_in(key, 1))
    controlled, view = jax.jit(nlls)(params, episode_tokens(discoverer.held_out()), jax.random.fold_in(key, 2))[1]
    result = {"controlled_action_nll": float(controlled)}
    if second:
        result["second_view_action_nll"] = float(view)
    return params, result
