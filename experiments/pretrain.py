"""Pretrain base models on expert episodes; resumable; evaluates as it goes.

    python experiments/pretrain.py --config=experiments/configs/grid.py:small --workdir=runs/grid-small/pretrain

Re-running the same command continues from the last checkpoint. Config fields can be
overridden on the command line (`--config.train.steps=2000`). Writes to the workdir:
`metrics.jsonl` and `tensorboard/` (training and evaluation metrics), `checkpoints/`,
`config.json`, `results.json` (final evaluation, speed) and `success_vs_time.png`.
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

from irl.stages.pretrain import pretrain  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:small", "pretraining config")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/pretrain", "output folder (resumes from it)")
PROGRESS = flags.DEFINE_boolean("progress", True, "show a progress bar")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    results = pretrain(CONFIG.value, WORKDIR.value, PROGRESS.value)
    print(json.dumps({k: v for k, v in results.items() if not k.endswith("_by_seed")}, indent=2))


if __name__ == "__main__":
    app.run(main)
