"""What the codes of exported metacontrollers name, on the same fresh expert episodes for each.

    python experiments/read_codes.py --pretrained=runs/grid-small/pretrain \
        runs/grid-small/discover [more discovery workdirs ...]

For each discovery workdir: the exported metacontroller (first seed) runs on the episodes
with its mean codes, and irl/analysis/codes.py reads each subgoal segment's code out as the
subgoal, the expert's first move and the cell of the segment's first colour (the readout the
discovery stage writes as `code_readout`; this command gives it for runs made before it
measured the cell, on one draw of episodes for all). Grid only. Prints one JSON line per run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from irl.analysis.codes import code_readout, grid_target_cells  # noqa: E402
from irl.control import metacontroller as mc  # noqa: E402
from irl.data import episode_tokens  # noqa: E402
from irl.discovery import load_discovered, take  # noqa: E402
from irl.envs.grid_pinpad import COLORS_PER_SUBGOAL, GRID_SIZE, N_CHANNELS  # noqa: E402
from irl.pretraining import load_pretrained  # noqa: E402

PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
EPISODES = flags.DEFINE_integer("episodes", 1024, "expert episodes to read the codes on")
MAX_STEPS = flags.DEFINE_integer("max_steps", 48, "steps per episode row (the small preset's discovery rows)")
SEED = flags.DEFINE_integer("seed", 5, "seed of the episodes")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) < 2:
        raise app.UsageError("give one or more discovery workdirs")
    pretrainer, _ = load_pretrained(PRETRAINED.value)
    if pretrainer.config.env != "grid_pinpad":
        raise ValueError(f"the cell readout is the grid's, not {pretrainer.config.env}'s")
    data = pretrainer.expert_data(EPISODES.value, MAX_STEPS.value)(jax.random.key(SEED.value))
    tokens = episode_tokens(data)
    subgoal = np.asarray(data.subgoal)
    cells = grid_target_cells(np.asarray(tokens.obs), subgoal, GRID_SIZE, N_CHANNELS, COLORS_PER_SUBGOAL)
    for workdir in argv[1:]:
        discovered = load_discovered(workdir, "metacontroller")
        base, params = take(discovered.base_params, 0), take(discovered.mc_params, 0)
        e = discovered.model.lower(base, tokens.obs, discovered.layer)
        cfg = discovered.mc_cfg
        observed = discovered.model.lower(base, tokens.obs, 0) if cfg.embeds_observations else None
        seq = mc.sequence(params, cfg, e, tokens.mask, jax.random.key(0), sample=False, observed=observed)
        readout = code_readout(np.asarray(seq.z), np.asarray(tokens.mask), subgoal, np.asarray(data.actions), cells)
        print(json.dumps({"discovery": workdir, "code_readout": readout}), flush=True)


if __name__ == "__main__":
    app.run(main)
