"""Hawk: the recurrent model of Griffin (De et al. 2024) over observation tokens, split at any
layer (SPEC.md section 4).

Each pre-norm residual block mixes time with the recurrent block: a gate branch GeLU(W_g x),
and a recurrent branch W_x x -> causal depthwise convolution (width 4) -> RG-LRU, multiplied
together and projected back; then a pre-norm ReLU MLP. The RG-LRU, per channel:

    r_t = sigmoid(W_r u_t + b_r),  i_t = sigmoid(W_i u_t + b_i)   (block-diagonal over heads)
    a_t = sigmoid(lambda) ** (8 r_t)
    h_t = a_t * h_{t-1} + sqrt(1 - a_t**2) * (i_t * u_t)

The whole sequence uses an associative scan; `init_cache` / `lower_step` / `upper_step` carry
(h, last conv inputs) per layer, so a rollout costs O(1) per step. Same API as the
transformer: `upper(params, lower(params, obs, l), l) == forward(params, obs)` for every l.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from irl.models.common import check_layer, layer_slice
from irl.models.encoders import check_encoder, embed, init_embed

CONV_WIDTH = 4
GATE_POWER = 8.0  # the constant c of a_t = a ** (c r_t)


@dataclasses.dataclass(frozen=True)
class HawkConfig:
    obs_size: int = 637
    n_actions: int = 4
    n_layers: int = 8
    width: int = 256
    n_heads: int = 8  # blocks of the block-diagonal gate weights
    mlp_width: int = 512
    init_scale: float = 0.1
    encoder: str = "linear"  # see irl/models/encoders.py

    def __post_init__(self):
        for name in ("obs_size", "n_actions", "n_layers", "width", "n_heads", "mlp_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"HawkConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.n_heads:
            raise ValueError(f"width {self.width} must be divisible by n_heads {self.n_heads}")
        check_encoder(self.encoder, self.obs_size)


def _dense(key, shape, fan_in, scale):
    return jax.random.normal(key, shape) * jnp.sqrt(scale / fan_in)


def init(key: jax.Array, cfg: HawkConfig) -> dict:
    keys = jax.random.split(key, 4)
    d, h = cfg.width, cfg.n_heads
    block = d // h

    def layer(k):
        ks = jax.random.split(k, 9)
        # a = sigmoid(lambda) starts uniform in [0.9, 0.999] (Griffin's initialisation)
        a = jax.random.uniform(ks[8], (d,), minval=0.9, maxval=0.999)
        return {
            "norm1": jnp.ones(d),
            "w_gate": _dense(ks[0], (d, d), d, cfg.init_scale),
            "w_in": _dense(ks[1], (d, d), d, cfg.init_scale),
            "conv_w": _dense(ks[2], (CONV_WIDTH, d), CONV_WIDTH, 1.0),
            "conv_b": jnp.zeros(d),
            "w_r": _dense(ks[3], (h, block, block), block, 1.0),
            "b_r": jnp.zeros(d),
            "w_i": _dense(ks[4], (h, block, block), block, 1.0),
            "b_i": jnp.zeros(d),
            "lam": jnp.log(a / (1 - a)),
            "w_out": _dense(ks[5], (d, d), d, cfg.init_scale),
            "norm2": jnp.ones(d),
            "w1": _dense(ks[6], (d, cfg.mlp_width), d, cfg.init_scale),
            "b1": jnp.zeros(cfg.mlp_width),
            "w2": _dense(ks[7], (cfg.mlp_width, d), cfg.mlp_width, cfg.init_scale),
            "b2": jnp.zeros(d),
        }

    return {
        "embed": init_embed(keys[0], cfg.encoder, cfg.obs_size, d, cfg.init_scale),
        "layers": jax.vmap(layer)(jax.random.split(keys[1], cfg.n_layers)),
        "norm_f": jnp.ones(d),
        "action_head": {"w": _dense(keys[2], (d, cfg.n_actions), d, cfg.init_scale), "b": jnp.zeros(cfg.n_actions)},
        "obs_head": {"w": _dense(keys[3], (d, cfg.obs_size), d, cfg.init_scale), "b": jnp.zeros(cfg.obs_size)},
    }


def rms_norm(scale, x):
    return x * jax.lax.rsqrt((x**2).mean(-1, keepdims=True) + 1e-6) * scale


def _block_diag(x, w, n_heads):
    """x [..., D] times a block-diagonal [H, D/H, D/H] matrix."""
    blocks = x.reshape(*x.shape[:-1], n_heads, -1)
    return jnp.einsum("...hi,hij->...hj", blocks, w).reshape(x.shape)


def _gates(p, u, cfg):
    """(a_t, input scale) of the RG-LRU for inputs u [..., D]."""
    r = jax.nn.sigmoid(_block_diag(u, p["w_r"], cfg.n_heads) + p["b_r"])
    i = jax.nn.sigmoid(_block_diag(u, p["w_i"], cfg.n_heads) + p["b_i"])
    log_a = GATE_POWER * r * jax.nn.log_sigmoid(p["lam"])
    a = jnp.exp(log_a)
    return a, jnp.sqrt(jnp.maximum(1 - jnp.exp(2 * log_a), 0.0)) * i * u


def _mlp(p, e):
    h = jax.nn.relu(rms_norm(p["norm2"], e) @ p["w1"] + p["b1"])
    return e + h @ p["w2"] + p["b2"]


def _lagged(x, k, axis):
    """x shifted k steps later along `axis`, zeros first: out[t] = x[t - k]."""
    axis = axis % x.ndim
    pad = [(0, 0)] * x.ndim
    pad[axis] = (k, 0)
    return jax.lax.slice_in_dim(jnp.pad(x, pad), 0, x.shape[axis], axis=axis)


def block(p, e, cfg, segments=None):
    """One residual block over a whole sequence e [..., T, D]. With `segments` int [..., T],
    the recurrence and the convolution restart wherever the segment id changes."""
    x = rms_norm(p["norm1"], e)
    gate = jax.nn.gelu(x @ p["w_gate"])
    u = x @ p["w_in"]
    if segments is None:
        segments = jnp.zeros(u.shape[:-1], jnp.int32)
    # out_t = sum_k w_k * u_{t-k} over inputs of the same segment: tap k reads k steps back
    conv = p["conv_b"]
    for k in range(CONV_WIDTH):
        same = (_lagged(segments + 1, k, -1) == segments + 1)[..., None]  # +1: the zero fill never matches
        conv = conv + p["conv_w"][k] * jnp.where(same, _lagged(u, k, -2), 0.0)
    a, b = _gates(p, conv, cfg)
    a = jnp.where((_lagged(segments + 1, 1, -1) == segments + 1)[..., None], a, 0.0)
    combine = lambda left, right: (left[0] * right[0], right[0] * left[1] + right[1])
    _, h = jax.lax.associative_scan(combine, (a, b), axis=-2)
    return _mlp(p, e + (gate * h) @ p["w_out"])


def block_step(p, e, state, cfg):
    """One token e [..., D] with state (h [..., D], last inputs [..., CONV_WIDTH-1, D])."""
    h_prev, window = state
    x = rms_norm(p["norm1"], e)
    gate = jax.nn.gelu(x @ p["w_gate"])
    u = x @ p["w_in"]
    window = jnp.concatenate([window, u[..., None, :]], axis=-2)  # oldest first, newest last
    conv = sum(p["conv_w"][k] * window[..., CONV_WIDTH - 1 - k, :] for k in range(CONV_WIDTH)) + p["conv_b"]
    a, b = _gates(p, conv, cfg)
    h = a * h_prev + b
    return _mlp(p, e + (gate * h) @ p["w_out"]), (h, window[..., 1:, :])


def head(params, e):
    x = rms_norm(params["norm_f"], e)
    return x @ params["action_head"]["w"] + params["action_head"]["b"], x @ params["obs_head"]["w"] + params["obs_head"]["b"]


def _run(params, e, start, stop, cfg, segments=None):
    return jax.lax.scan(lambda e, p: (block(p, e, cfg, segments), None), e, layer_slice(params, start, stop))[0]


def lower(params, obs, layer: int, cfg: HawkConfig, segments=None):
    """Residual stream e_layer [..., T, D] after blocks 0..layer-1 (layer 0: the embedding)."""
    check_layer(layer, cfg.n_layers)
    return _run(params, embed(params, obs, cfg.encoder), 0, layer, cfg, segments)


def upper(params, e, layer: int, cfg: HawkConfig, segments=None):
    check_layer(layer, cfg.n_layers)
    return head(params, _run(params, e, layer, cfg.n_layers, cfg, segments))


def forward(params, obs, cfg: HawkConfig, segments=None):
    return upper(params, lower(params, obs, 0, cfg, segments), 0, cfg, segments)


def init_cache(cfg: HawkConfig, batch_shape: tuple[int, ...], max_len: int | None = None) -> dict:
    """Recurrent state h [L, *batch, D] and conv inputs [L, *batch, CONV_WIDTH-1, D], zeros.
    `max_len` is accepted for the transformer's signature; a recurrent state does not grow."""
    return {
        "h": jnp.zeros((cfg.n_layers, *batch_shape, cfg.width)),
        "conv": jnp.zeros((cfg.n_layers, *batch_shape, CONV_WIDTH - 1, cfg.width)),
    }


def restart(cache: dict, rows: jax.Array) -> dict:
    """The rows (bool [*batch]) begin a new sequence at the next token: their recurrent state
    and convolution inputs go back to zero, as in a fresh cache."""
    zero = lambda x, extra: jnp.where(rows.reshape((1, *rows.shape) + (1,) * extra), 0.0, x)
    return {"h": zero(cache["h"], 1), "conv": zero(cache["conv"], 2)}


def _step(params, cache, e, start, stop, cfg):
    def body(e, xs):
        p, h, window = xs
        e, (h, window) = block_step(p, e, (h, window), cfg)
        return e, (h, window)

    e, (h, window) = jax.lax.scan(body, e, (layer_slice(params, start, stop), cache["h"][start:stop], cache["conv"][start:stop]))
    return e, {"h": cache["h"].at[start:stop].set(h), "conv": cache["conv"].at[start:stop].set(window)}


def lower_step(params, cache, obs_t, layer: int, cfg: HawkConfig):
    check_layer(layer, cfg.n_layers)
    return _step(params, cache, embed(params, obs_t, cfg.encoder), 0, layer, cfg)


def upper_step(params, cache, e_t, layer: int, cfg: HawkConfig):
    check_layer(layer, cfg.n_layers)
    e, cache = _step(params, cache, e_t, layer, cfg.n_layers, cfg)
    return head(params, e), cache
