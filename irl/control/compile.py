"""CompILE (Kipf et al. 2019) as a discovery baseline (SPEC.md section 6): segments and codes
inferred from the raw observations (not the residual stream), the codes driving the same
hypernetwork controller at the controlled layer of the frozen base model.

Per episode of length n (steps 0..n-1), with at most M segments:

    x_t       = relu(W o_t)                               per-step observation features
    f_t, r_t  = forward GRU and backward recurrence on x  (the metacontroller's own pieces)
    b_i       ~ Concrete(logits_i)  i = 1..M-1             boundary i: a relaxed one-hot over
                                                           positions 1..n-1 and "none" (slot T)
    c_i(t)    = sum_{tau <= t} b_i(tau)                   boundary i has passed by step t
    w_i(t)    = (1 - c_i(t)) prod_{j<i} c_j(t)            soft membership of step t in segment i
                 (w_M = prod_{j<M} c_j; the w sum to 1)
    mu_i, s_i = f_lat(sum_t w_i(t) [f_t, r_t] / sum_t w_i(t))    one Gaussian code per segment
    z_t       = sum_i w_i(t) z_i,  U_t = f_hyp(z_t),  e_t + U_t e_t at layer L/2

Boundary i's logits see log c_{i-1}(t), so it falls at or after boundary i-1 (segments may be
empty). The loss is the action NLL of the controlled base model plus alpha times the codes'
KL to N(0, I), summed over segments, per real step. Simplification (ours): CompILE's prior on
segment lengths (a KL on the boundary distributions) is left out; the cap of M segments is the
only pressure toward few boundaries. Training samples the boundaries with Gumbel noise at
temperature `temperature`; analysis takes hard boundaries (argmax, or a hard Gumbel sample)
and mean codes (or sampled ones).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from irl.control import linear
from irl.control import metacontroller as mc

_LOG_EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class CompileConfig(linear.CodeDecoded):
    width: int  # D, the residual stream at the controlled layer
    obs_size: int
    latent_dim: int = 8
    hidden: int = 64
    max_segments: int = 4
    decoder_hidden: int = 32
    rank: int | None = 16
    decoder_form: str = "linear"
    temperature: float = 1.0

    def __post_init__(self):
        linear.require_positive(self, ("width", "obs_size", "latent_dim", "hidden", "decoder_hidden"))
        if self.max_segments < 2:
            raise ValueError(f"CompileConfig.max_segments must be >= 2, got {self.max_segments}")
        if self.temperature <= 0:
            raise ValueError(f"CompileConfig.temperature must be > 0, got {self.temperature}")
        self.decoder  # the controller's own checks (rank)


def init(key: jax.Array, cfg: CompileConfig) -> dict:
    k = jax.random.split(key, 9)
    h = cfg.hidden
    dense = mc._dense
    return {
        "features": dense(k[0], cfg.obs_size, h),
        # the keys "gru" and "embedder" let metacontroller.gru_step / embed_sequence run on them
        "gru": {"x": dense(k[1], h, 3 * h), "h": dense(k[2], h, 3 * h)},
        "embedder": {"x": dense(k[3], h, h), "gates": dense(k[4], h, 2 * h),
                     "lam": mc._lru_lambda(jax.random.fold_in(key, 2), h)},
        "boundary": {"hidden": dense(k[5], 2 * h, h), "out": dense(k[6], h, cfg.max_segments - 1, scale=0.1),
                     "none": jnp.zeros(cfg.max_segments - 1)},
        "latent": {"hidden": dense(k[7], 2 * h, h), "out": dense(k[8], h, 2 * cfg.latent_dim, scale=0.1)},
        "decoder": linear.init(jax.random.fold_in(key, 1), cfg.decoder),
    }


@struct.dataclass
class Segmentation:
    """CompILE's inference over a batch of episodes."""
    z: jax.Array  # [B, T, Z]: the code in force at each step
    weights: jax.Array  # [B, T, M]: segment membership
    boundaries: jax.Array  # [B, M-1, T+1]: (relaxed) one-hot positions; slot T = no boundary
    switch: jax.Array  # [B, T]: 1 where a segment starts (t = 0 included), from `boundaries`
    kl: jax.Array  # [B]: the codes' KL to the prior, summed over segments


def _features(params, obs, mask):
    x = jax.nn.relu(obs.astype(jnp.float32) @ params["features"]["w"] + params["features"]["b"])
    forward = mc.gru_step(params, x, mc.gru_sequence(params, x))  # h_t: the states after reading step t
    return jnp.concatenate([forward, mc.embed_sequence(params, x, mask)], axis=-1)


def segment(params: dict, cfg: CompileConfig, obs: jax.Array, mask: jax.Array, key: jax.Array,
            sample: bool = True, hard: bool = False) -> Segmentation:
    """obs [B, T, obs_size] (raw), mask bool [B, T]. sample: Gumbel noise on boundaries and
    reparameterised codes (else argmax / mean); hard: one-hot boundaries (for analysis)."""
    batch, steps = mask.shape
    features = _features(params, obs, mask)  # [B, T, 2H]
    logits = mc._mlp(params["boundary"], features)  # [B, T, M-1]
    none = jnp.broadcast_to(params["boundary"]["none"], (batch, 1, cfg.max_segments - 1))
    logits = jnp.concatenate([logits, none], axis=1)  # [B, T+1, M-1]
    position = jnp.arange(steps + 1)
    length = mask.sum(-1, keepdims=True)
    allowed = ((position >= 1) & (position < length)) | (position == steps)  # [B, T+1]
    k_boundary, k_code = jax.random.split(key)
    gumbel = jax.random.gumbel(k_boundary, (cfg.max_segments - 1, batch, steps + 1))

    passed_before = jnp.ones((batch, steps + 1))  # c_{i-1}; boundary "-1" is at t = 0
    boundaries, passed = [], []
    for i in range(cfg.max_segments - 1):  # M-1 is a small static number
        l_i = jnp.where(allowed, logits[..., i] + jnp.log(passed_before + _LOG_EPS), -jnp.inf)
        l_i = (l_i + gumbel[i]) if sample else l_i
        b_i = jax.nn.softmax(l_i / cfg.temperature, axis=-1)
        if hard:
            b_i = jax.nn.one_hot(jnp.argmax(l_i, -1), steps + 1)
        passed_before = jnp.cumsum(b_i, axis=-1)
        boundaries.append(b_i)
        passed.append(passed_before[:, :steps])
    passed = jnp.stack(passed, -1)  # [B, T, M-1]
    before = jnp.cumprod(jnp.concatenate([jnp.ones((batch, steps, 1)), passed], -1), -1)  # prod_{j<i} c_j
    weights = before * jnp.concatenate([1 - passed, jnp.ones((batch, steps, 1))], -1)  # [B, T, M]

    member = weights * mask[..., None]
    pooled = jnp.einsum("btm,btf->bmf", member, features) / (member.sum(1)[..., None] + 1e-6)
    mu, log_std = jnp.split(mc._mlp(params["latent"], pooled), 2, axis=-1)
    log_std = jnp.clip(log_std, -6.0, 2.0)
    codes = mu + jnp.exp(log_std) * jax.random.normal(k_code, mu.shape) if sample else mu
    boundaries = jnp.stack(boundaries, 1)
    starts = jnp.zeros((batch, steps)).at[:, 0].set(1.0) + boundaries[..., :steps].sum(1)
    return Segmentation(z=jnp.einsum("btm,bmz->btz", weights, codes), weights=weights, boundaries=boundaries,
                        switch=jnp.minimum(starts, 1.0) * mask, kl=mc.kl_to_prior(mu, log_std).sum(-1))


def controlled(params: dict, cfg: CompileConfig, e: jax.Array, seg: Segmentation) -> jax.Array:
    """e + U(z_t) e at the controlled layer, [B, T, D]."""
    return linear.steer(params["decoder"], seg.z, e, cfg.decoder)
