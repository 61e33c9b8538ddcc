"""Experiment configs, one file per environment (grid.py, ant.py), loaded by ml_collections'
config flags as `--config=experiments/configs/<env>.py:<spec>`."""

from __future__ import annotations

from typing import Callable

import ml_collections


def from_spec(spec: str, pretrain_config: Callable, stage_configs: dict[str, Callable]) -> ml_collections.ConfigDict:
    """`<preset>` -> pretrain_config(preset); `<stage>-<preset>` -> stage_configs[stage](preset)."""
    stage, _, preset = spec.rpartition("-")
    if stage:
        if stage not in stage_configs:
            raise ValueError(f"unknown stage {stage!r} in {spec!r}; known: {', '.join(stage_configs)}")
        return stage_configs[stage](preset)
    return pretrain_config(preset)
