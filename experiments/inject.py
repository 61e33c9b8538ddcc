"""The latent-code injection analysis on the ant (irl/analysis/injection.py): the discovered
metacontroller's colour codes, forced into new episodes at a fixed step and after colour 0.

    python experiments/inject.py --discovery=runs/ant-small/discover --workdir=runs/ant-small/inject \
        --config=experiments/configs/ant.py:inject-small

Writes `injection.json` (codes found per colour; per colour and pooled, the rate of reaching
the colour with and without its code forced at the switch step; the same for the unseen
transition) and `injected_episodes.png`.
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

from irl.stages.inject import inject  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/ant.py:inject-small", "injection config")
DISCOVERY = flags.DEFINE_string("discovery", "runs/ant-small/discover", "discovery workdir (its metacontroller)")
WORKDIR = flags.DEFINE_string("workdir", "runs/ant-small/inject", "output folder")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    summary = inject(CONFIG.value, DISCOVERY.value, WORKDIR.value)
    print(json.dumps({k: summary[k] for k in ("codes_per_colour", "at_step", "unseen_transition")}, indent=2))


if __name__ == "__main__":
    app.run(main)
