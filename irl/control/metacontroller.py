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
future from t on; padding after an episode's end is skipped (a = 1, no input). Its decays start
as Griffin's RG-LRU's (in [0.9, 0.999]), so s_t remembers tens of future steps from the start.

Initialisation choices (ours, in the config): the switch's output bias `switch_bias` sets the
initial gate (codes held by default), and `encoder_log_std` the encoder's initial noise scale.

The step-wise pieces (`switch`, `gru_step`, `controller`) are what the internal-RL
environment uses, frozen; `sequence` runs a whole batch of sequences for training.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from irl.control import linear

ENCODER_INPUTS = ("all", "future", "future_observations")
SEQUENCE_EMBEDDINGS = ("per_step", "whole")
SWITCH_THRESHOLD = 0.5  # beta_t >= this is a switch: where internal RL decides, and what analysis counts


@dataclasses.dataclass(frozen=True)
class MetacontrollerConfig(linear.CodeDecoded):
    width: int  # D, the residual stream at the controlled layer
    latent_dim: int = 8  # z
    gru_size: int = 32  # h
    embed_size: int = 32  # s
    encoder_hidden: int = 64
    switch_hidden: int = 64  # ours; the paper does not say
    decoder_hidden: int = 32
    rank: int | None = 16  # None: a full D x D controller (the ant)
    decoder_form: str = "linear"  # e + U e (the paper's); "additive" (ours): e + v(z) (irl/control/linear.py)
    force_beta_one: bool = False  # the "beta = 1 at every step" baseline
    switch_bias: float = -2.0  # initial switch logit (ours): sigmoid(-2) ~ 0.12, codes held by default
    # > 0: in training the gate is a relaxed Bernoulli (Gumbel-sigmoid) sample at this temperature,
    # sigmoid((logit + logistic noise) / temperature); 0: the deterministic sigmoid(logit)
    switch_temperature: float = 0.0
    encoder_log_std: float = 0.0  # initial log sigma of the encoder (ours): below 0, codes start informative
    # True: the gate is hard everywhere (training too): 1 where sigmoid(logit) >= SWITCH_THRESHOLD,
    # else 0, with straight-through gradients, so codes are held exactly between switches.
    # Measured on the small grid model: it switches at almost every step (docs/grid.md, "Why the
    # controllers and internal RL fall short"), so the presets leave it off
    hard_switch: bool = False
    # what the encoder reads: "all" (the paper): e_t, h_{t-1} and s_t, with s embedded from the
    # controlled layer; "future" (ours): s_t alone; "future_observations" (ours): s_t alone,
    # embedded from the base model's layer-0 residual (each step's observation, no history), so
    # a code can say where the segment goes but not how that differs from what the past makes
    # the base model expect
    encoder_inputs: str = "all"
    # what s the encoder reads at step t: "per_step" (ours, the default): s_t, the backward
    # recurrence's state at t, a summary of the future from t on; "whole": s_1 at every step, one
    # vector for the whole sequence (the paper's wording, "an internal sequence embedding"), so a
    # code can name what the episode does, but the segment's next moves only through it
    sequence_embedding: str = "per_step"

    def __post_init__(self):
        linear.require_positive(self, ("width", "latent_dim", "gru_size", "embed_size", "encoder_hidden",
                                       "switch_hidden", "decoder_hidden"))
        if self.switch_temperature < 0:
            raise ValueError(f"switch_temperature must be >= 0 (0: no gate noise), got {self.switch_temperature}")
        if self.encoder_inputs not in ENCODER_INPUTS:
            raise ValueError(f"encoder_inputs must be one of {ENCODER_INPUTS}, got {self.encoder_inputs!r}")
        if self.sequence_embedding not in SEQUENCE_EMBEDDINGS:
            raise ValueError(f"sequence_embedding must be one of {SEQUENCE_EMBEDDINGS}, "
                             f"got {self.sequence_embedding!r}")
        self.decoder  # the controller's own checks (rank)

    @property
    def encoder_reads_past(self) -> bool:
        return self.encoder_inputs == "all"

    @property
    def embeds_observations(self) -> bool:
        return self.encoder_inputs == "future_observations"


_DECAY_POWER = 8.0  # Griffin's c: the gate r scales the log decay by up to this factor


def _dense(key, fan_in, fan_out, scale=1.0):
    return {"w": jax.random.normal(key, (fan_in, fan_out)) * jnp.sqrt(scale / fan_in), "b": jnp.zeros(fan_out)}


def _mlp(p, x):
    return jax.nn.relu(x @ p["hidden"]["w"] + p["hidden"]["b"]) @ p["out"]["w"] + p["out"]["b"]


def _lru_lambda(key, size, low=0.9, high=0.999):
    """Decay parameters of the backward recurrence, initialised as Griffin's RG-LRU: the decay
    at r = 1, sigmoid(lam)^8, uniform in [low, high], so that s_t remembers tens of steps of
    the future from the start (a subgoal's target can lie that far ahead)."""
    decay = jax.random.uniform(key, (size,), minval=low, maxval=high)
    base = decay ** (1 / _DECAY_POWER)
    return jnp.log(base / (1 - base))


def init(key: jax.Array, cfg: MetacontrollerConfig) -> dict:
    k = jax.random.split(key, 9)
    d, g, s, z = cfg.width, cfg.gru_size, cfg.embed_size, cfg.latent_dim
    return {
        "gru": {"x": _dense(k[0], d, 3 * g), "h": _dense(k[1], g, 3 * g)},
        "embedder": {"x": _dense(k[2], d, s), "gates": _dense(k[3], d, 2 * s), "lam": _lru_lambda(k[8], s)},
        "encoder": {"hidden": _dense(k[4], (d + g + s) if cfg.encoder_reads_past else s, cfg.encoder_hidden),
                    "out": {"w": _dense(k[5], cfg.encoder_hidden, 2 * z, scale=0.1)["w"],
                            "b": jnp.concatenate([jnp.zeros(z), jnp.full(z, cfg.encoder_log_std, jnp.float32)])}},
        # the switch starts biased to "keep" so that codes are held by default
        "switch": {"hidden": _dense(k[6], d + g + z, cfg.switch_hidden),
                   "out": {"w": jnp.zeros((cfg.switch_hidden, 1)), "b": jnp.full(1, cfg.switch_bias, jnp.float32)}},
        "decoder": linear.init(k[7], cfg.decoder),
    }


def gru_step(params: dict, e: jax.Array, h: jax.Array) -> jax.Array:
    """h_t = GRU(e_t, h_{t-1}); e [..., D], h [..., G]."""
    return _gru_update(params, e @ params["gru"]["x"]["w"] + params["gru"]["x"]["b"], h)


def _gru_update(params: dict, x: jax.Array, h: jax.Array) -> jax.Array:
    """The GRU update from the input's projection x [..., 3G] (which needs no recurrence)."""
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


def encode(params: dict, e: jax.Array | None, h_prev: jax.Array | None, s: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mu, log_std) [..., Z] of the controller encoder; e and h_prev None when it reads s alone."""
    out = _mlp(params["encoder"], s if e is None else jnp.concatenate([e, h_prev, s], axis=-1))
    mu, log_std = jnp.split(out, 2, axis=-1)
    return mu, jnp.clip(log_std, -6.0, 2.0)


def embed_sequence(params: dict, e: jax.Array, mask: jax.Array) -> jax.Array:
    """s [B, T, S] from e [B, T, D] and mask bool [B, T]: a backward gated recurrence."""
    p = params["embedder"]
    x = e @ p["x"]["w"] + p["x"]["b"]
    r, i = jnp.split(jax.nn.sigmoid(e @ p["gates"]["w"] + p["gates"]["b"]), 2, axis=-1)
    log_a = _DECAY_POWER * r * jax.nn.log_sigmoid(p["lam"])
    a = jnp.where(mask[..., None], jnp.exp(log_a), 1.0)
    # sqrt(1 - a^2) via expm1, floored: at a = 1 in float32 the plain form is sqrt(0), whose
    # infinite derivative turns into NaN gradients once a gate saturates
    b = jnp.where(mask[..., None], jnp.sqrt(jnp.maximum(-jnp.expm1(2 * log_a), 1e-6)) * i * x, 0.0)
    combine = lambda later, earlier: (later[0] * earlier[0], earlier[0] * later[1] + earlier[1])
    _, s = jax.lax.associative_scan(combine, (a, b), axis=e.ndim - 2, reverse=True)
    return s


def controller(params: dict, z: jax.Array, cfg: MetacontrollerConfig):
    """U = f_hyp(z): factors (A, B) [..., D, r] (or (U, None) when full)."""
    return linear.factors(params["decoder"], z, cfg.decoder)


def steer(params: dict, z: jax.Array, e: jax.Array, cfg: MetacontrollerConfig) -> jax.Array:
    """e + U(z) e (or the decoder's other form), the controlled residual stream."""
    return linear.steer(params["decoder"], z, e, cfg.decoder)


def kl_to_prior(mu: jax.Array, log_std: jax.Array) -> jax.Array:
    """KL(N(mu, diag sigma^2) || N(0, I)) [...], summed over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(2 * log_std) + mu**2 - 1.0 - 2 * log_std, axis=-1)


def binary_entropy(beta: jax.Array) -> jax.Array:
    """H(beta) [...] in nats: 0 for a gate at 0 or 1, log 2 at 0.5."""
    b = jnp.clip(beta, 1e-6, 1 - 1e-6)
    return -(b * jnp.log(b) + (1 - b) * jnp.log1p(-b))


@struct.dataclass
class Sequence:
    """The metacontroller's trajectory over a batch of sequences, all [B, T, ...]."""
    controlled: jax.Array  # e + U e [B, T, D]
    beta: jax.Array  # [B, T]
    z: jax.Array  # [B, T, Z]
    mu: jax.Array  # [B, T, Z]
    log_std: jax.Array  # [B, T, Z]
    kl: jax.Array  # [B, T]


def gru_sequence(params: dict, e: jax.Array) -> jax.Array:
    """h_{t-1} for every t, [B, T, G] from e [B, T, D] (h_0 = 0): the GRU state each step reads."""
    batch, _, _ = e.shape
    gru_size = params["gru"]["h"]["w"].shape[0]
    x = e @ params["gru"]["x"]["w"] + params["gru"]["x"]["b"]  # all steps at once, outside the recurrence
    step = lambda h, x_t: (_gru_update(params, x_t, h), h)
    _, h_prev = jax.lax.scan(step, jnp.zeros((batch, gru_size)), jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(h_prev, 0, 1)


def sequence(params: dict, cfg: MetacontrollerConfig, e: jax.Array, mask: jax.Array, key: jax.Array,
             sample: bool = True, switch_noise: bool = False, hard_switch: bool = False,
             observed: jax.Array | None = None) -> Sequence:
    """Run over e [B, T, D] (the residual stream at the controlled layer) with mask [B, T].
    observed [B, T, D]: the layer-0 residual, which the embedder reads when
    cfg.encoder_inputs == "future_observations" (required then).
    sample=False uses z~ = mu (for analysis). hard_switch: the gate is 1 where
    beta_t >= SWITCH_THRESHOLD and 0 elsewhere (gradients pass straight through to the soft
    gate), so a code is held exactly between switches, as internal RL holds its codes; always
    on when cfg.hard_switch. switch_noise (training, when
    cfg.switch_temperature > 0): the gate is the relaxed Bernoulli sample
    sigmoid((logit + logistic noise) / temperature) instead of sigmoid(logit) (the paper's
    relaxation for its grid rate-distortion curve). A gate that hedges then switches at random;
    the deterministic gate of analysis and internal RL is the sample's switching probability,
    sigmoid(logit). Measured on the small grid model, it keeps the gate from ever opening
    (docs/grid.md, Discovery), so the presets leave it off.

    Only the switch and the integration depend on z_{t-1}; the GRU depends on e alone and the
    encoder on (e, h, s), so those run outside the z recurrence, and the switch's first layer
    is split into its (e, h) part, computed for all steps at once, and its z part. The result
    equals stepping `switch`, `encode` and `gru_step` one step at a time."""
    batch, steps = e.shape[:2]
    h_prev = gru_sequence(params, e)
    if cfg.embeds_observations and observed is None:
        raise ValueError('encoder_inputs="future_observations" embeds the layer-0 residual: pass observed')
    s = embed_sequence(params, observed if cfg.embeds_observations else e, mask)
    if cfg.sequence_embedding == "whole":
        s = jnp.broadcast_to(s[:, :1], s.shape)  # s_1 summarises every real step of the episode
    mu, log_std = encode(params, e, h_prev, s) if cfg.encoder_reads_past else encode(params, None, None, s)
    noise = jax.random.normal(key, mu.shape) if sample else jnp.zeros_like(mu)
    z_tilde = mu + jnp.exp(log_std) * noise
    hidden = params["switch"]["hidden"]
    width_eh = e.shape[-1] + h_prev.shape[-1]
    pre_eh = jnp.concatenate([e, h_prev], axis=-1) @ hidden["w"][:width_eh] + hidden["b"]
    w_z, out = hidden["w"][width_eh:], params["switch"]["out"]

    noisy_gate = switch_noise and cfg.switch_temperature > 0
    hard_switch = hard_switch or cfg.hard_switch
    # logistic noise [T, B] (zero without gate noise): from its own key, so the codes' noise is
    # the same with and without it
    gate_noise = (jax.random.logistic(jax.random.fold_in(key, 1), (steps, batch)) if noisy_gate
                  else jnp.zeros((steps, batch)))
    temperature = cfg.switch_temperature if noisy_gate else 1.0

    def step(z_prev, xs):
        pre_t, z_tilde_t, noise_t, first = xs
        logit = (jax.nn.relu(pre_t + z_prev @ w_z) @ out["w"] + out["b"])[..., 0]
        beta = jnp.where(first | cfg.force_beta_one, 1.0, jax.nn.sigmoid((logit + noise_t) / temperature))
        if hard_switch:
            beta = beta + jax.lax.stop_gradient((beta >= SWITCH_THRESHOLD).astype(beta.dtype) - beta)
        z = beta[:, None] * z_tilde_t + (1 - beta[:, None]) * z_prev
        return z, (beta, z)

    time_major = lambda x: jnp.swapaxes(x, 0, 1)
    first = jnp.arange(steps) == 0
    _, (beta, z) = jax.lax.scan(step, jnp.zeros((batch, cfg.latent_dim)),
                                (time_major(pre_eh), time_major(z_tilde), gate_noise, first))
    beta, z = time_major(beta), time_major(z)
    return Sequence(controlled=steer(params, z, e, cfg), beta=beta, z=z, mu=mu, log_std=log_std,
                    kl=kl_to_prior(mu, log_std))
