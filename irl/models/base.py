"""One interface over the base-model architectures: `make_base_model(arch, **config)`.

Later stages (probes, controllers, metacontroller, internal RL) take a BaseModel and never ask
which architecture is inside. Every method is a pure function of params and inputs.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

from irl.models import hawk, transformer

ARCHITECTURES: dict[str, tuple[ModuleType, type]] = {
    "transformer": (transformer, transformer.TransformerConfig),
    "hawk": (hawk, hawk.HawkConfig),
}


@dataclasses.dataclass(frozen=True)
class BaseModel:
    arch: str
    cfg: transformer.TransformerConfig | hawk.HawkConfig

    @property
    def _module(self) -> ModuleType:
        return ARCHITECTURES[self.arch][0]

    @property
    def n_layers(self) -> int:
        return self.cfg.n_layers

    @property
    def width(self) -> int:
        return self.cfg.width

    def init(self, key):
        return self._module.init(key, self.cfg)

    def lower(self, params, obs, layer: int, segments=None):
        """obs [..., T, obs_size] -> e_layer [..., T, D]."""
        return self._module.lower(params, obs, layer, self.cfg, segments)

    def upper(self, params, e, layer: int, segments=None):
        """e_layer [..., T, D] -> (action logits [..., T, A], next-obs logits [..., T, obs_size])."""
        return self._module.upper(params, e, layer, self.cfg, segments)

    def forward(self, params, obs, segments=None):
        return self._module.forward(params, obs, self.cfg, segments)

    def init_cache(self, batch_shape: tuple[int, ...], max_len: int):
        return self._module.init_cache(self.cfg, batch_shape, max_len)

    def restart_cache(self, cache, rows):
        """Rows (bool [*batch]) of a step-wise cache begin a new sequence at the next token."""
        return self._module.restart(cache, rows)

    def lower_step(self, params, cache, obs_t, layer: int):
        return self._module.lower_step(params, cache, obs_t, layer, self.cfg)

    def upper_step(self, params, cache, e_t, layer: int):
        return self._module.upper_step(params, cache, e_t, layer, self.cfg)


def make_base_model(arch: str, **config) -> BaseModel:
    """arch in ARCHITECTURES; config: fields of that architecture's config dataclass."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {tuple(ARCHITECTURES)}, got {arch!r}")
    config_cls = ARCHITECTURES[arch][1]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown {arch} config fields {sorted(unknown)}; known: {sorted(known)}")
    return BaseModel(arch, config_cls(**config))
