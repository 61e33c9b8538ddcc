"""The abstract-action policy of internal RL (SPEC.md section 7): a one-block Hawk (the RG-LRU
block of irl/models/hawk.py) over the residual stream e at decision times, emitting a diagonal
Gaussian over the latent code z.

    x_k = W_in rms_norm(e_{t_k}) + b_in           e at the k-th decision time t_k
    y_k = Hawk block(x_1..k)                      recurrent: depends on decisions 1..k only
    z_k ~ N(W_mu rms_norm(y_k) + b_mu, diag exp(2 log_std))

The mean head is zero and log_std is 0 at initialisation, so the untrained policy samples
from the metacontroller's prior N(0, I), the distribution its decoder was trained under.

Two forms, equal by construction: `step` for acting (one decision, a carried (h, conv window)
state), and `sequence` over the compacted decision sequence [B, K] for the PPO update. The
recurrence only ever sees decision-time inputs, so the recorded state at decision k is exactly
the one `sequence` rebuilds from decisions 1..k.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from irl.models import hawk
from irl.rl.common import standard_normal


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    input_width: int  # D of the base model's residual stream
    latent_dim: int  # Z of the metacontroller's code
    width: int = 256  # paper
    n_heads: int = 8
    mlp_width: int = 512
    init_log_std: float = 0.0

    def __post_init__(self):
        for name in ("input_width", "latent_dim", "width", "n_heads", "mlp_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        self.block  # the Hawk block's own checks (width divisible by heads)

    @property
    def block(self) -> hawk.HawkConfig:
        return hawk.HawkConfig(obs_size=1, n_actions=1, n_layers=1, width=self.width, n_heads=self.n_heads,
                               mlp_width=self.mlp_width, encoder="linear")


def init(key: jax.Array, cfg: PolicyConfig) -> dict:
    k_in, k_block = jax.random.split(key)
    layer = jax.tree.map(lambda w: w[0], hawk.init(k_block, cfg.block)["layers"])
    return {
        "w_in": jax.random.normal(k_in, (cfg.input_width, cfg.width)) / math.sqrt(cfg.input_width),
        "b_in": jnp.zeros(cfg.width),
        "block": layer,
        "norm_out": jnp.ones(cfg.width),
        "w_mu": jnp.zeros((cfg.width, cfg.latent_dim)),
        "b_mu": jnp.zeros(cfg.latent_dim),
        "log_std": jnp.full(cfg.latent_dim, cfg.init_log_std, jnp.float32),
    }


def initial_state(cfg: PolicyConfig, batch_shape: tuple[int, ...] = ()):
    """The recurrent state before the first decision: (h [*B, W], conv inputs [*B, 3, W])."""
    return (jnp.zeros((*batch_shape, cfg.width)), jnp.zeros((*batch_shape, hawk.CONV_WIDTH - 1, cfg.width)))


def _project(params, e):
    return hawk.rms_norm(1.0, e) @ params["w_in"] + params["b_in"]


def _gaussian(params, y):
    mu = hawk.rms_norm(params["norm_out"], y) @ params["w_mu"] + params["b_mu"]
    return mu, jnp.broadcast_to(params["log_std"], mu.shape)


def log_prob(z: jax.Array, mu: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(z; mu, diag exp(2 log_std)) [...], summed over the last axis."""
    return jnp.sum(-0.5 * ((z - mu) * jnp.exp(-log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def step(params: dict, cfg: PolicyConfig, state, e: jax.Array, keys: jax.Array):
    """One decision per episode. e [*B, D], keys [*B], state from `initial_state`
    -> (state, z [*B, Z], log p(z) [*B])."""
    y, state = hawk.block_step(params["block"], _project(params, e), state, cfg.block)
    mu, log_std = _gaussian(params, y)
    noise = standard_normal(keys, cfg.latent_dim)
    z = mu + jnp.exp(log_std) * noise
    return state, z, log_prob(z, mu, log_std)


def sequence(params: dict, cfg: PolicyConfig, e: jax.Array, episode: jax.Array | None = None):
    """(mu, log_std) [B, K, Z] for the decision sequence e [B, K, D] (decision k at slot k;
    slots after the last decision are padding that, being later, changes nothing). With
    `episode` int [B, K], a row holds several episodes one after another, and the recurrence
    restarts where the episode changes, as the acting state did."""
    y = hawk.block(params["block"], _project(params, e), cfg.block, episode)
    return _gaussian(params, y)


def sequence_log_prob(params: dict, cfg: PolicyConfig, e: jax.Array, z: jax.Array,
                      episode: jax.Array | None = None) -> jax.Array:
    """log p(z_k | the decisions of its episode up to k) [B, K] for decision sequences
    e [B, K, D], z [B, K, Z] (episode: as in `sequence`)."""
    return log_prob(z, *sequence(params, cfg, e, episode))
