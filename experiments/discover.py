"""Unsupervised discovery on a pretrained base model: the metacontroller over an alpha sweep,
and its baselines (beta = 1, co-trained from scratch, CompILE).

    python experiments/discover.py --config=experiments/configs/grid.py:discover-small \
        --pretrained=runs/grid-small/pretrain --workdir=runs/grid-small/discover

Writes `discovery.json` (switch F1, binary fraction of beta, switches and subgoals per episode,
KL and action NLL, by alpha and per baseline), `beta_traces.png`, `rate_distortion.png`, one
resumable training folder per method, and the exported metacontrollers internal RL loads
(`irl.discovery.load_discovered`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from irl.stages.discover import discover  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:discover-small", "discovery config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/discover", "output folder")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    summary = discover(CONFIG.value, PRETRAINED.value, WORKDIR.value)
    keys = ("best_alpha", "switch_f1", "beta_binary_fraction", "switches_per_episode", "subgoals_per_episode",
            "wall_seconds")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))


if __name__ == "__main__":
    app.run(main)
