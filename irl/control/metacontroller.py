"""The metacontroller (SPEC.md section 6): reads e_t at the controlled layer of a frozen base
model and writes a linear controller there, `e_t + U_t e_t` with `U_t = f_hyp(z_t)`.

Per step t (h_0 = 0, z_0 = 0):

    beta_t      = sigmoid(f_switch(e_t, h_{t-1}, z_{t-1}))      causal switching unit, scalar
    mu_t, sig_t = f_enc(e_t, h_{t-1}, s_t)                       s = f_emb(e_1..T), non-causal
    z~_t        = mu_t + sig_t * noise                           reparameterised
    z_t         = beta_t * z~_t + (1 - beta_t) * z_{t-1}         temporal integration
    U_t         = f_hyp(z_t)                                     rank-r factored (or full)
    h_t         = GRU(e_t, h_{t-1})

loss = mean over real steps of [ -log p(a_t | o_1..t, z_1..t) + alpha * KL(N(mu_t, sig_t) || N(0, I)) ]
(the KL is not weighted by beta). beta_1 is 1 (ours): with z_0 = 0 the first step must choose a
code, and internal RL always chooses one at the first step.

The sequence embedder (ours: the paper only says "an SSM") is a gated linear recurrence run
backwards in time, s_t = a_t s_{t+1} + sqrt(1 - a_t^2) (i_t * W e_t), so s_t summarises the
future from t on; padding after an episode's end is skipped (a = 1, no input).

The step-wise pieces (`switch`, `gru_step`, `controller`) are what the internal-RL
environment uses, frozen; `sequence` runs a whole batch of sequences for training.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from irl.control import linear


@dataclasses.dataclass(frozen=True)
class MetacontrollerConfig:
    width: int  # D, the residual stream at the controlled layer
    latent_dim: int = 8  # z
    gru_size: int = 32  # h
    embed_size: int = 32  # s
    encoder_hidden: int = 64
    switch_hidden: int = 64  # ours; the paper does not say
    decoder_hidden: int = 32
    rank: int | None = 16  # None: a full D x D controller (the ant)
    force_beta_one: bool = False  # the "beta = 1 at every step" baseline

    def __post_init__(self):
        for name in ("width", "latent_dim", "gru_size", "embed_size", "encoder_hidden", "switch_hidden",
                     "decoder_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"MetacontrollerConfig.{name} must be >= 1, got {getattr(self, name)}")
        self.decoder  # the controller's own checks (rank)

    @property
    def decoder(self) -> linear.ControllerConfig:
        return linear.ControllerConfig(width=self.width, code_dim=self.latent_dim, rank=self.rank,
                                       hidden=self.decoder_hidden)


def _dense(key, fan_in, fan_out, scale=1.0):
    return {"w": jax.random.normal(key, (fan_in, fan_out)) * jnp.sqrt(scale / fan_in), "b": jnp.zeros(fan_out)}


def _mlp(p, x):
    return jax.nn.relu(x @ p["hidden"]["w"] + p["hidden"]["b"]) @ p["out"]["w"] + p["out"]["b"]


def init(key: jax.Array, cfg: MetacontrollerConfig) -> dict:
    k = jax.random.split(key, 9)
    d, g, s, z = cfg.width, cfg.gru_size, cfg.embed_size, cfg.latent_dim
    return {
        "gru": {"x": _dense(k[0], d, 3 * g), "h": _dense(k[1], g, 3 * g)},
        "embedder": {"x": _dense(k[2], d, s), "gates": _dense(k[3], d, 2 * s), "lam": jnp.full(s, 2.0)},
        "encoder": {"hidden": _dense(k[4], d + g + s, cfg.encoder_hidden),
                    "out": _dense(k[5], cfg.encoder_hidden, 2 * z, scale=0.1)},
        # the switch starts biased to "keep" (beta ~ 0.12) so that codes are held by default
        "switch": {"hidden": _dense(k[6], d + g + z, cfg.switch_hidden),
                   "out": {"w": jnp.zeros((cfg.switch_hidden, 1)), "b": jnp.full(1, -2.0)}},
        "decoder": linear.init(k[7], cfg.decoder),
    }


def gru_step(params: dict, e: jax.Array, h: jax.Array) -> jax.Array:
    """h_t = GRU(e_t, h_{t-1}); e [..., D], h [..., G]."""
    x = e @ params["gru"]["x"]["w"] + params["gru"]["x"]["b"]
    r_in, z_in, n_in = jnp.split(x, 3, axis=-1)
    hh = h @ params["gru"]["h"]["w"] + params["gru"]["h"]["b"]
    r_h, z_h, n_h = jnp.split(hh, 3, axis=-1)
    reset, update = jax.nn.sigmoid(r_in + r_h), jax.nn.sigmoid(z_in + z_h)
    candidate = jnp.tanh(n_in + reset * n_h)
    return (1 - update) * candidate + update * h


def switch(params: dict, e: jax.Array, h_prev: jax.Array, z_prev: jax.Array) -> jax.Array:
    """beta_t [...] in [0, 1] from e_t [..., D], h_{t-1} [..., G], z_{t-1} [..., Z]."""
    logit = _mlp(params["switch"], jnp.concatenate([e, h_prev, z_prev], axis=-1))[..., 0]
    return jax.nn.sigmoid(logit)


def encode(params: dict, e: jax.Array, h_prev: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mu, log_std) [..., Z] of the controller encoder."""
    out = _mlp(params["encoder"], jnp.concatenate([e, h_prev, s], axis=-1))
    mu, log_std = jnp.split(out, 2, axis=-1)
    return mu, jnp.clip(log_std, -6.0, 2.0)


def embed_sequence(params: dict, e: jax.Array, mask: jax.Array) -> jax.Array:
    """s [B, T, S] from e [B, T, D] and mask bool [B, T]: a backward gated recurrence."""
    p = params["embedder"]
    x = e @ p["x"]["w"] + p["x"]["b"]
    r, i = jnp.split(jax.nn.sigmoid(e @ p["gates"]["w"] + p["gates"]["b"]), 2, axis=-1)
    log_a = 8.0 * r * jax.nn.log_sigmoid(p["lam"])
    a = jnp.where(mask[..., None], jnp.exp(log_a), 1.0)
    b = jnp.where(mask[..., None], jnp.sqrt(jnp.maximum(1 - jnp.exp(2 * log_a), 0.0)) * i * x, 0.0)
    combine = lambda later, earlier: (later[0] * earlier[0], earlier[0] * later[1] + earlier[1])
    _, s = jax.lax.associative_scan(combine, (a, b), axis=e.ndim - 2, reverse=True)
    return s


def controller(params: dict, z: jax.Array, cfg: MetacontrollerConfig):
    """U = f_hyp(z): factors (A, B) [..., D, r] (or (U, None) when full)."""
    return linear.factors(params["decoder"], z, cfg.decoder)


def kl_to_prior(mu: jax.Array, log_std: jax.Array) -> jax.Array:
    """KL(N(mu, diag sigma^2) || N(0, I)) [...], summed over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(2 * log_std) + mu**2 - 1.0 - 2 * log_std, axis=-1)


@struct.dataclass
class Sequence:
    """The metacontroller's trajectory over a batch of sequences, all [B, T, ...]."""
    controlled: jax.Array  # e + U e [B, T, D]
    beta: jax.Array  # [B, T]
    z: jax.Array  # [B, T, Z]
    mu: jax.Array  # [B, T, Z]
    log_std: jax.Array  # [B, T, Z]
    kl: jax.Array  # [B, T]


def sequence(params: dict, cfg: MetacontrollerConfig, e: jax.Array, mask: jax.Array, key: jax.Array,
             sample: bool = True) -> Sequence:
    """Run over e [B, T, D] (the residual stream at the controlled layer) with mask [B, T].
    sample=False uses z~ = mu (for analysis)."""
    batch, steps = e.shape[:2]
    s = embed_sequence(params, e, mask)
    noise = jax.random.normal(key, (batch, steps, cfg.latent_dim)) if sample else jnp.zeros((batch, steps, cfg.latent_dim))

    def step(carry, xs):
        h, z_prev, first = carry
        e_t, s_t, noise_t = xs
        beta = switch(params, e_t, h, z_prev)
        beta = jnp.where(first | cfg.force_beta_one, 1.0, beta)
        mu, log_std = encode(params, e_t, h, s_t)
        z = beta[:, None] * (mu + jnp.exp(log_std) * noise_t) + (1 - beta[:, None]) * z_prev
        return (gru_step(params, e_t, h), z, jnp.zeros_like(first)), (beta, z, mu, log_std)

    carry = (jnp.zeros((batch, cfg.gru_size)), jnp.zeros((batch, cfg.latent_dim)), jnp.ones((batch,), bool))
    time_major = lambda x: jnp.swapaxes(x, 0, 1)
    _, outs = jax.lax.scan(step, carry, (time_major(e), time_major(s), time_major(noise)))
    beta, z, mu, log_std = (time_major(x) for x in outs)
    a, b = controller(params, z, cfg)
    return Sequence(controlled=linear.apply(e, a, b), beta=beta, z=z, mu=mu, log_std=log_std,
                    kl=kl_to_prior(mu, log_std))
