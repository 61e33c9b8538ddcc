"""What discovery hands to internal RL: a frozen base model, a frozen metacontroller, and the
layer it reads and writes. Every discovery method (the metacontroller, its beta=1 and
co-trained baselines) produces one; internal RL never asks which."""

from __future__ import annotations

import dataclasses

from irl.control.metacontroller import MetacontrollerConfig
from irl.models.base import BaseModel


@dataclasses.dataclass(frozen=True)
class Discovered:
    model: BaseModel
    base_params: dict  # [seeds, ...]: the pretrained (or co-trained) base model per seed
    mc_cfg: MetacontrollerConfig
    mc_params: dict  # [seeds, ...]: the metacontroller trained on that seed's base model
    layer: int  # the controlled layer, L/2

    @property
    def seeds(self) -> int:
        import jax

        return jax.tree.leaves(self.mc_params)[0].shape[0]
