"""Internal RL and its baselines on the post-training task (SPEC.md section 7).

    python experiments/rl.py --pretrained=runs/grid-small/pretrain --discovery=runs/grid-small/discover \
        --workdir=runs/grid-small/rl --config=experiments/configs/grid.py:rl-small

Writes `rl.json` (per method: final median success, episodes, episodes to 0.5 and 0.8
success, the median/quartile curve), `rl_curves.png` and `rl_curves_log.png` (median with
25-75% band over runs, linear and log episodes) and a rendered post-task episode of the
trained internal policy, `internal_policy_episode.png`. Re-running resumes.
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

from irl.stages.rl import rl  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:rl-small", "RL config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
DISCOVERY = flags.DEFINE_string("discovery", "runs/grid-small/discover", "discovery workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/rl", "output folder")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    results = rl(CONFIG.value, PRETRAINED.value, DISCOVERY.value, WORKDIR.value)
    keys = ("final_success_median", "episodes", "episodes_to_0.5", "episodes_to_0.8")
    print(json.dumps({m: {k: r[k] for k in keys} for m, r in results.items()}, indent=2))


if __name__ == "__main__":
    app.run(main)
