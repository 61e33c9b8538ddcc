"""What the base model's two heads mean, per environment (SPEC.md section 4).

The models emit raw head outputs; a space turns them into likelihoods, modes and samples:

- `CategoricalActions`: GridPinpad's 4 moves; the action head's outputs are logits.
- `GaussianActions(dim)`: AntPinpad's 8 torques; the action head emits a mean and a log
  standard deviation per torque (2 x dim outputs), "a Gaussian with learned diagonal variance";
  acting clips to the torque range [-1, 1].
- `GridObjectsObs`: GridPinpad's next observation, 13 categoricals over the 49 cells
  (irl/pretraining.py's note).
- `GaussianObs`: AntPinpad's continuous next observation, a unit-variance Gaussian around the
  obs head's output (the negative log-likelihood is half the squared error, constants dropped).

`for_env(name)` gives an environment's (action space, observation space).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS

LOG_STD_RANGE = (-5.0, 2.0)


@dataclasses.dataclass(frozen=True)
class CategoricalActions:
    """Discrete actions; head outputs are logits [..., n]."""

    n: int = 4
    metric: str = "accuracy"  # the teacher-forced agreement metric `agreement` computes

    @property
    def head_size(self) -> int:
        return self.n

    def nll(self, out: jax.Array, actions: jax.Array) -> jax.Array:
        return -jnp.take_along_axis(jax.nn.log_softmax(out), actions[..., None], -1)[..., 0]

    def policy_nll(self, out: jax.Array, probs: jax.Array) -> jax.Array:
        """Cross-entropy -sum_a probs(a) log p(a) to a target distribution probs [..., n]: the
        expected `nll` of an action drawn from it."""
        return -jnp.sum(probs * jax.nn.log_softmax(out), -1)

    def agreement(self, out: jax.Array, actions: jax.Array) -> jax.Array:
        """1 where the model's most likely action is the target's."""
        return (jnp.argmax(out, -1) == actions).astype(jnp.float32)

    def mode(self, out: jax.Array) -> jax.Array:
        return jnp.argmax(out, -1)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.random.categorical(key, out)


@dataclasses.dataclass(frozen=True)
class GaussianActions:
    """Continuous actions in [-1, 1]^dim; head outputs [..., 2 dim] = (mean, log std)."""

    dim: int = 8
    metric: str = "mse"

    @property
    def head_size(self) -> int:
        return 2 * self.dim

    def split(self, out: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = out[..., : self.dim], out[..., self.dim:]
        return mean, jnp.clip(log_std, *LOG_STD_RANGE)

    def nll(self, out: jax.Array, actions: jax.Array) -> jax.Array:
        mean, log_std = self.split(out)
        z = (actions - mean) * jnp.exp(-log_std)
        return jnp.sum(0.5 * z**2 + log_std + 0.5 * math.log(2 * math.pi), axis=-1)

    def agreement(self, out: jax.Array, actions: jax.Array) -> jax.Array:
        """The squared error of the mean (clipped to the torque range), averaged over torques."""
        return jnp.mean((self.mode(out) - actions) ** 2, axis=-1)

    def mode(self, out: jax.Array) -> jax.Array:
        return jnp.clip(self.split(out)[0], -1.0, 1.0)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mean, log_std = self.split(out)
        return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class GridObjectsObs:
    """GridPinpad's one-hot observation [..., 637] as 13 categoricals over 49 cells."""

    def nll(self, out: jax.Array, next_obs: jax.Array) -> jax.Array:
        shape = (*out.shape[:-1], GRID_SIZE * GRID_SIZE, N_CHANNELS)
        log_p = jax.nn.log_softmax(out.reshape(shape), axis=-2)
        return -(log_p * next_obs.reshape(shape)).sum((-1, -2))


@dataclasses.dataclass(frozen=True)
class GaussianObs:
    """A continuous observation around the obs head's output, unit variance."""

    def nll(self, out: jax.Array, next_obs: jax.Array) -> jax.Array:
        return 0.5 * jnp.sum((next_obs - out) ** 2, axis=-1)


def for_env(name: str):
    """(action space, observation space) of an environment of irl.envs."""
    if name == "grid_pinpad":
        return CategoricalActions(4), GridObjectsObs()
    if name == "ant_pinpad":
        return GaussianActions(8), GaussianObs()
    raise ValueError(f"no spaces for environment {name!r}")
