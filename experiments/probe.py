"""Linear probes of a pretrained base model's residual stream, every layer, every seed.

    python experiments/probe.py --pretrained=runs/grid-small/pretrain --workdir=runs/grid-small/probe \
        --config=experiments/configs/grid.py:analysis-small

Writes `probe.json` (held-out accuracy by layer per seed and mean, probability of the true
subgoal by time within a subgoal segment), `probe_accuracy_by_layer.png` and
`probe_p_true_by_time.png`.
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

from irl.stages.probe import probe  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:analysis-small", "analysis config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/probe", "output folder")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    summary = probe(CONFIG.value, PRETRAINED.value, WORKDIR.value)
    print(json.dumps({k: summary[k] for k in ("accuracy_by_layer", "chance")}, indent=2))


if __name__ == "__main__":
    app.run(main)
