"""The action NLL that codes naming the true subgoal reach through a decoder like discovery's,
to set beside what discovery's own codes reach.

    python experiments/subgoal_code_nll.py --pretrained=runs/grid-small/pretrain \
        --config=experiments/configs/grid.py:discover-small --config.train.view_window=6 \
        --config.train.view_symmetry=True

The code of every step is the one-hot of the true subgoal (times --scale, padded to the latent
size); a fresh hypernetwork decoder of the metacontroller's shape is trained on discovery's
NLL terms, the controlled pass and, when the config asks for it, the second view
(irl/discovery.py: Discoverer.second_view), on discovery's batches. Prints both NLLs on the
held-out episodes discovery measures on (on the ant, those kept apart from pretraining). No KL
is paid: this is the distortion of subgoal codes, not their rate. First model.
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

from irl.analysis import labelled_metacontroller as labelled  # noqa: E402
from irl.discovery import Discoverer  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:discover-small", "discovery config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
STEPS = flags.DEFINE_integer("steps", 2000, "decoder training steps (of the config's batch)")
LR = flags.DEFINE_float("lr", 3e-3, "AdamW learning rate (weight decay: the config's)")
SCALE = flags.DEFINE_float("scale", 3.0, "norm of each subgoal's code")


def main(_):
    logging.set_verbosity(logging.WARNING)
    config = CONFIG.value
    discoverer = Discoverer(config, PRETRAINED.value)
    _, result = labelled.subgoal_code_nll(config, discoverer, STEPS.value, LR.value, SCALE.value)
    print(json.dumps({**result, "steps": STEPS.value, "scale": SCALE.value}))


if __name__ == "__main__":
    app.run(main)
