"""Linear residual-stream controllers `e + U e`, produced from a code by a small hypernetwork.

U is kept factored, U = A B^T with A, B [D, r], so applying it costs 2 D r per token and the
D x D matrix is never built (rank=None gives a full U [D, D], as for the ant). The
hypernetwork maps a code z [code_dim] through one hidden layer, h(z) = tanh(z W1 + b1), to the
entries of U:

    A(z) = (h(z) - h(0)) W2_A        zero at z = 0
    B(z) = h(z) W2_B                 not: U = A B^T is first order in z near 0

so a zero code gives U = 0 exactly and an inactive controller leaves the model untouched.
(Without the bias both factors would be odd in z, so U(-z) = A B^T = U(z): a code and its
negative would be the same controller. With both factors zero at 0, U would be second order in
z near 0. Codes drawn from an N(0, I) prior, the metacontroller's, would lose half their room
or steer weakly; tests/test_control.py checks that neither happens.)

`form="additive"` (ours, for experiments) replaces `e + U e` by `e + v(z)`, v(z) = (h(z) - h(0)) W2:
a push that is the same whatever the residual stream holds, so a controller cannot read the
history at the layer it writes (docs/grid.md, *Nor is it the controller's access to the history*).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

FORMS = ("linear", "additive")  # e + U(z) e (the paper's), e + v(z)


def require_positive(cfg, names) -> None:
    """ValueError for the first field of `names` (of the dataclass cfg) that is below 1."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{type(cfg).__name__}.{name} must be >= 1, got {getattr(cfg, name)}")


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    width: int  # D, the residual stream
    code_dim: int  # the code z (one-hot per subgoal for supervised controllers)
    rank: int | None = 16  # None: full D x D
    hidden: int = 32
    init_scale: float = 0.1
    form: str = "linear"  # one of FORMS; "additive" ignores rank

    def __post_init__(self):
        require_positive(self, ("width", "code_dim", "hidden"))
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        if self.rank is not None and not 1 <= self.rank <= self.width:
            raise ValueError(f"rank must be in 1..{self.width} or None (full), got {self.rank}")

    @property
    def n_outputs(self) -> int:
        if self.form == "additive":
            return self.width
        return self.width * self.width if self.rank is None else 2 * self.width * self.rank


class CodeDecoded:
    """For configs whose latent code (`latent_dim`) steers the residual stream (`width`)
    through a hypernetwork controller (`rank`, `decoder_hidden`, `decoder_form`)."""

    @property
    def decoder(self) -> ControllerConfig:
        return ControllerConfig(width=self.width, code_dim=self.latent_dim, rank=self.rank, hidden=self.decoder_hidden,
                                form=self.decoder_form)


def init(key: jax.Array, cfg: ControllerConfig) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (cfg.code_dim, cfg.hidden)) * jnp.sqrt(1.0 / cfg.code_dim),
        "b1": jax.random.normal(k3, (cfg.hidden,)),
        "w2": jax.random.normal(k2, (cfg.hidden, cfg.n_outputs)) * jnp.sqrt(cfg.init_scale / (cfg.hidden * cfg.width)),
    }


def factors(params: dict, z: jax.Array, cfg: ControllerConfig):
    """Code z [..., code_dim] -> (A, B) each [..., D, r], or (U [..., D, D], None) when full, or
    (v [..., D], None) when additive; A (and a full U, and v) is zero at z = 0."""
    hidden = jnp.tanh(z @ params["w1"] + params["b1"])
    shifted = hidden - jnp.tanh(params["b1"])
    if cfg.form == "additive":
        return shifted @ params["w2"], None
    batch = z.shape[:-1]
    if cfg.rank is None:
        return (shifted @ params["w2"]).reshape(*batch, cfg.width, cfg.width), None
    w2 = params["w2"].reshape(cfg.hidden, cfg.width, 2 * cfg.rank)
    a = jnp.einsum("...h,hdr->...dr", shifted, w2[..., :cfg.rank])
    b = jnp.einsum("...h,hdr->...dr", hidden, w2[..., cfg.rank:])
    return a, b


def apply(e: jax.Array, a: jax.Array, b: jax.Array | None, form: str = "linear") -> jax.Array:
    """e [..., D] -> e + U e with U = A B^T, or U = a [..., D, D] when b is None (full); for
    form="additive", the push e + a, a [..., D]. The form is the controller config's (`factors`
    gives a full U and a push alike as (a, None))."""
    if form == "additive":
        return e + a
    if b is None:
        return e + jnp.einsum("...ij,...j->...i", a, e)
    return e + jnp.einsum("...ir,...r->...i", a, jnp.einsum("...jr,...j->...r", b, e))


def steer(params: dict, z: jax.Array, e: jax.Array, cfg: ControllerConfig) -> jax.Array:
    """The residual stream e [..., D] steered by the controller of code z [..., code_dim]."""
    a, b = factors(params, z, cfg)
    return apply(e, a, b, cfg.form)


def dense(a: jax.Array, b: jax.Array | None) -> jax.Array:
    """The full U of a linear controller (for tests and analysis only)."""
    return a if b is None else a @ jnp.swapaxes(b, -1, -2)
