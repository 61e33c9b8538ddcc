"""Supervised residual-stream controllers at every layer, every seed, judged on the
post-training task (never seen in pretraining) with codes switched by the true progress.

    python experiments/control.py --pretrained=runs/grid-small/pretrain --workdir=runs/grid-small/control \
        --config=experiments/configs/grid.py:analysis-small

Writes `control.json` (success by controlled layer, per seed and mean; per-subgoal completion
rate, the reliability that bounds a six-subgoal chain), `control_success_by_layer.png` and a
rendered post-training episode at the best layer, `controlled_episode.png`.
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

from irl.stages.control import control  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:analysis-small", "analysis config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/control", "output folder")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    summary = control(CONFIG.value, PRETRAINED.value, WORKDIR.value)
    print(json.dumps({k: summary[k] for k in ("success_by_layer", "subgoal_completion_by_layer", "best_layer")}, indent=2))


if __name__ == "__main__":
    app.run(main)
