"""Causal transformer over observation tokens, split at any layer (SPEC.md section 4).

Pre-norm blocks (LayerNorm), multi-head attention with a T5-style bucketed relative-position
bias shared by all layers, ReLU MLP, variance-scaling initialisation. Pure functions over a
params pytree whose per-layer weights are stacked on a leading [L] axis.

The residual stream is first-class: e_0 is the embedding, e_l the output of block l.
`lower(params, obs, l)` returns e_l and `upper(params, e, l)` runs blocks l..L-1 and the
heads, so `upper(params, lower(params, obs, l), l) == forward(params, obs)` for every l.
`init_cache` / `lower_step` / `upper_step` do the same one token at a time with a key/value
cache, so a closed-loop rollout costs O(t) per step, never a re-run of the prefix.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from irl.models.common import check_layer, dense, unstacked_layers
from irl.models.encoders import check_encoder, embed, init_embed


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    obs_size: int = 637
    n_actions: int = 4
    n_layers: int = 6
    width: int = 256
    n_heads: int = 4
    head_dim: int = 64
    mlp_width: int = 512
    n_buckets: int = 32
    max_distance: int = 128
    init_scale: float = 0.1  # variance scale of the initialiser
    encoder: str = "linear"  # see irl/models/encoders.py
    # (ours) attend to the last `window` tokens only, the token itself included (0: the whole
    # past, the paper); a window the frozen model is run with, not one it must be trained with
    window: int = 0

    def __post_init__(self):
        for name in ("obs_size", "n_actions", "n_layers", "width", "n_heads", "head_dim", "mlp_width", "n_buckets"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransformerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.window < 0:
            raise ValueError(f"window must be >= 0 (0: the whole past), got {self.window}")
        if self.n_buckets % 2:
            raise ValueError(f"n_buckets must be even (half exact, half logarithmic), got {self.n_buckets}")
        check_encoder(self.encoder, self.obs_size)


def _dense(key, fan_in, fan_out, scale):
    return jax.random.normal(key, (fan_in, fan_out)) * jnp.sqrt(scale / fan_in)


def init(key: jax.Array, cfg: TransformerConfig) -> dict:
    """Parameters: embedding, stacked blocks, shared relative bias, final norm, two heads."""
    keys = jax.random.split(key, 5)
    inner = cfg.n_heads * cfg.head_dim

    def layer(k):
        kq, kk, kv, ko, k1, k2 = jax.random.split(k, 6)
        return {
            "ln1": {"scale": jnp.ones(cfg.width), "bias": jnp.zeros(cfg.width)},
            "wq": _dense(kq, cfg.width, inner, cfg.init_scale),
            "wk": _dense(kk, cfg.width, inner, cfg.init_scale),
            "wv": _dense(kv, cfg.width, inner, cfg.init_scale),
            "wo": _dense(ko, inner, cfg.width, cfg.init_scale),
            "ln2": {"scale": jnp.ones(cfg.width), "bias": jnp.zeros(cfg.width)},
            "w1": _dense(k1, cfg.width, cfg.mlp_width, cfg.init_scale),
            "b1": jnp.zeros(cfg.mlp_width),
            "w2": _dense(k2, cfg.mlp_width, cfg.width, cfg.init_scale),
            "b2": jnp.zeros(cfg.width),
        }

    return {
        "embed": init_embed(keys[0], cfg.encoder, cfg.obs_size, cfg.width, cfg.init_scale),
        "layers": jax.vmap(layer)(jax.random.split(keys[1], cfg.n_layers)),
        "rel_bias": jnp.zeros((cfg.n_buckets, cfg.n_heads)),
        "ln_f": {"scale": jnp.ones(cfg.width), "bias": jnp.zeros(cfg.width)},
        "action_head": {"w": _dense(keys[2], cfg.width, cfg.n_actions, cfg.init_scale), "b": jnp.zeros(cfg.n_actions)},
        "obs_head": {"w": _dense(keys[3], cfg.width, cfg.obs_size, cfg.init_scale), "b": jnp.zeros(cfg.obs_size)},
    }


def relative_bucket(distance: jax.Array, n_buckets: int, max_distance: int) -> jax.Array:
    """T5's causal bucketing of how far back a key is (distance >= 0, int): the first half of
    the buckets are exact distances, the rest logarithmic up to max_distance."""
    exact = n_buckets // 2
    log_ratio = jnp.log(jnp.maximum(distance, 1) / exact) / jnp.log(max_distance / exact)
    far = exact + (log_ratio * (n_buckets - exact)).astype(jnp.int32)
    return jnp.where(distance < exact, distance, jnp.minimum(far, n_buckets - 1))


def _normalize_fwd(x):
    mean = x.mean(-1, keepdims=True)
    rstd = jax.lax.rsqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-6)
    normalized = (x - mean) * rstd
    return normalized, (normalized, rstd)


@jax.custom_vjp
def _normalize(x):
    """(x - mean) / std over the last axis, with a hand-written gradient: left to autodiff, XLA's
    CPU backend fuses the normalisation's backward into each consumer of the gradient (the
    transposes before the weight-gradient products among them) and computes it several times
    over; the barrier makes it computed once. The same numbers as autodiff's gradient."""
    return _normalize_fwd(x)[0]


def _normalize_bwd(residuals, g):
    normalized, rstd = residuals
    centred = g - g.mean(-1, keepdims=True)
    dx = rstd * (centred - normalized * (g * normalized).mean(-1, keepdims=True))
    return (jax.lax.optimization_barrier(dx),)


_normalize.defvjp(_normalize_fwd, _normalize_bwd)


def _layer_norm(p, x):
    return _normalize(x) * p["scale"] + p["bias"]


def _attention(p, x, keys, values, bias, cfg):
    """x [..., Tq, D] queries; keys/values [..., H, Tk, hd]; bias [H, Tq, Tk] (-inf masked)."""
    q = dense(x, p["wq"]).reshape(*x.shape[:-1], cfg.n_heads, cfg.head_dim)
    q = jnp.swapaxes(q, -2, -3)  # [..., H, Tq, hd]
    logits = q @ jnp.swapaxes(keys, -1, -2) / jnp.sqrt(cfg.head_dim) + bias
    mixed = jax.nn.softmax(logits, axis=-1) @ values  # [..., H, Tq, hd]
    mixed = jnp.swapaxes(mixed, -2, -3).reshape(*x.shape[:-1], cfg.n_heads * cfg.head_dim)
    return dense(mixed, p["wo"])


def _heads(x, p, cfg):
    """[..., D] -> [..., H, hd] -> [..., H, T, hd] layout for keys and values."""
    kv = dense(x, p).reshape(*x.shape[:-1], cfg.n_heads, cfg.head_dim)
    return jnp.swapaxes(kv, -2, -3)


def _block(p, e, bias, cfg, write_kv=None):
    """One pre-norm block on e [..., T, D]. With `write_kv(k, v) -> (keys, values)`, e holds
    one new token whose keys/values [..., H, 1, hd] go into a cache that it attends over."""
    x = _layer_norm(p["ln1"], e)
    k, v = _heads(x, p["wk"], cfg), _heads(x, p["wv"], cfg)
    if write_kv is not None:
        k, v = write_kv(k, v)
    e = e + _attention(p, x, k, v, bias, cfg)
    h = jax.nn.relu(dense(_layer_norm(p["ln2"], e), p["w1"]) + p["b1"])
    return e + dense(h, p["w2"]) + p["b2"]


def _relative_bias(params, cfg, distance):
    """[H, *distance.shape]: the learned bias of how far back (>= 0) each key lies."""
    bucket = relative_bucket(jnp.maximum(distance, 0), cfg.n_buckets, cfg.max_distance)
    return jnp.moveaxis(params["rel_bias"][bucket], -1, 0)


def _bias(params, cfg, query_pos, key_pos):
    """[H, Tq, Tk] relative bias, -inf where the key lies in the future (or further back than
    the window)."""
    distance = query_pos[:, None] - key_pos[None, :]
    visible = distance >= 0
    if cfg.window:
        visible &= distance < cfg.window
    return jnp.where(visible, _relative_bias(params, cfg, distance), -jnp.inf)


def _run_blocks(params, e, start, stop, cfg, segments=None):
    """Blocks start..stop-1 on e [..., T, D]. `segments` int [..., T] (optional) packs several
    episodes in one row: a token attends only to earlier tokens of its own segment, and since
    the bias depends on distance alone, each episode sees exactly what it would see alone.

    A Python loop over the layers, not a scan: a scan stacks every layer's saved activations
    for the backward pass (zero-filled, written and read back: 17% of the paper-size training
    step on a CPU), which the loop does not need."""
    positions = jnp.arange(e.shape[-2])
    bias = _bias(params, cfg, positions, positions)
    if segments is not None:
        same = segments[..., :, None] == segments[..., None, :]
        bias = jnp.where(same[..., None, :, :], bias, -jnp.inf)

    for p in unstacked_layers(params, start, stop):
        e = _block(p, e, bias, cfg)
    return e


def lower(params, obs, layer: int, cfg: TransformerConfig, segments=None):
    """Residual stream e_layer [..., T, D] after blocks 0..layer-1 (layer 0: the embedding)."""
    check_layer(layer, cfg.n_layers)
    return _run_blocks(params, embed(params, obs, cfg.encoder), 0, layer, cfg, segments)


def head(params, e):
    """Final norm and the two heads: (action logits [..., A], next-observation logits [..., O])."""
    x = _layer_norm(params["ln_f"], e)
    return (dense(x, params["action_head"]["w"]) + params["action_head"]["b"],
            dense(x, params["obs_head"]["w"]) + params["obs_head"]["b"])


def upper(params, e, layer: int, cfg: TransformerConfig, segments=None):
    """Blocks layer..L-1 on e [..., T, D], then the heads."""
    check_layer(layer, cfg.n_layers)
    return head(params, _run_blocks(params, e, layer, cfg.n_layers, cfg, segments))


def forward(params, obs, cfg: TransformerConfig, segments=None):
    return upper(params, lower(params, obs, 0, cfg, segments), 0, cfg, segments)


def init_cache(cfg: TransformerConfig, batch_shape: tuple[int, ...], max_len: int) -> dict:
    """Empty key/value cache: k, v [L, *batch, H, max_len, hd], a ring in which token t lives at
    slot t % max_len; t, the tokens written so far; start [*batch], the token at which each
    row's current sequence began (see `restart`). No sequence may be longer than max_len."""
    shape = (cfg.n_layers, *batch_shape, cfg.n_heads, max_len, cfg.head_dim)
    return {"k": jnp.zeros(shape), "v": jnp.zeros(shape), "t": jnp.int32(0),
            "start": jnp.zeros(batch_shape, jnp.int32)}


def restart(cache: dict, rows: jax.Array) -> dict:
    """The rows (bool [*batch]) begin a new sequence at the next token: from then on they
    attend only to its tokens, exactly as from a fresh cache (the bias depends on distance
    alone). The other rows carry on."""
    return dict(cache, start=jnp.where(rows, cache["t"], cache["start"]))


def _step_blocks(params, cache, e, start, stop, cfg):
    """Blocks start..stop-1 on one token e [..., D] at position cache['t'].

    The layers are unrolled so that each writes only its new token's keys and values into the
    cache (a dynamic_update_slice XLA does in place when the cache is a loop carry); a scan
    over layers would emit a fresh copy of every layer's whole cache at every step."""
    max_len = cache["k"].shape[-2]
    t = cache["t"]
    distance = (t - jnp.arange(max_len)) % max_len  # how far back the token in each slot is
    visible = distance <= (t - cache["start"])[..., None]  # [*batch, max_len]: this sequence's past
    if cfg.window:
        visible &= distance < cfg.window
    bias = jnp.where(visible[..., None, None, :], _relative_bias(params, cfg, distance)[:, None, :], -jnp.inf)
    stored = {"k": cache["k"], "v": cache["v"]}
    for layer in range(start, stop):
        def write_kv(k, v, layer=layer):
            for name, new in (("k", k), ("v", v)):
                start_index = (layer,) + (0,) * (new.ndim - 2) + (t % max_len, 0)
                stored[name] = jax.lax.dynamic_update_slice(stored[name], new[None], start_index)
            return stored["k"][layer], stored["v"][layer]

        p = jax.tree.map(lambda w, layer=layer: w[layer], params["layers"])
        e = _block(p, e[..., None, :], bias, cfg, write_kv)[..., 0, :]
    return e, dict(cache, **stored)


def lower_step(params, cache, obs_t, layer: int, cfg: TransformerConfig):
    """One observation [..., obs_size] -> (e_layer [..., D], cache). Pair with upper_step."""
    check_layer(layer, cfg.n_layers)
    return _step_blocks(params, cache, embed(params, obs_t, cfg.encoder), 0, layer, cfg)


def upper_step(params, cache, e_t, layer: int, cfg: TransformerConfig):
    """e_layer of one token -> ((action logits, obs logits), cache advanced by one token)."""
    check_layer(layer, cfg.n_layers)
    e, cache = _step_blocks(params, cache, e_t, layer, cfg.n_layers, cfg)
    return head(params, e), dict(cache, t=cache["t"] + 1)
