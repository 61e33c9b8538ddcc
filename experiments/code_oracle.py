"""The code oracle of a decoder, and the check that the measure can succeed.

    python experiments/code_oracle.py --pretrained=runs/grid-small/pretrain \
        --discovery=runs/grid-small/discover --out=runs/grid-small/code_oracle.json

One code per subgoal is fitted through a frozen code -> controller map on the pretraining
tasks' expert episodes (true subgoals), then switched by the true progress on the post-training
task (irl/stages/discover.py: code_oracle). It runs on (a) the exported metacontroller's
decoder, internal RL's ceiling on it, and (b) as the check, the hypernetwork of supervised
controllers trained here at L/2 (analysis config), which is known to express the unseen
transitions: its one-hot codes' own success is reported beside the fitted codes'. And (c), an
upper bound on (a) that uses what RL never sees, one code per subgoal position of the
post-training task fitted on that task's expert episodes, so that codes may depend on the
history as a policy's may. First pretrained model, grid only.
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
from ml_collections import config_flags  # noqa: E402

from irl import envs  # noqa: E402
from irl.analysis.supervised_control import N_SUBGOALS, run_controlled, train_controllers  # noqa: E402
from irl.control.linear import ControllerConfig  # noqa: E402
from irl.discovery import load_discovered, take  # noqa: E402
from irl.pretraining import load_pretrained  # noqa: E402
from irl.stages.discover import code_oracle, discovered_code_oracle  # noqa: E402

DISCOVER = config_flags.DEFINE_config_file("discover_config", "experiments/configs/grid.py:discover-small",
                                           "discovery config (its eval.code_oracle)")
ANALYSIS = config_flags.DEFINE_config_file("analysis_config", "experiments/configs/grid.py:analysis-small",
                                           "analysis config (the supervised controllers of the check)")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
DISCOVERY = flags.DEFINE_string("discovery", "runs/grid-small/discover", "discovery workdir")
OUT = flags.DEFINE_string("out", "runs/grid-small/code_oracle.json", "output file")
CHECK = flags.DEFINE_bool("check", True, "also run the check on supervised controllers")
POST_FIT = flags.DEFINE_bool("post_fit", True, "also fit one code per subgoal position on the post-training "
                             "task's expert episodes (an upper bound: codes may depend on the history)")


def supervised_check(pretrainer, params, analysis, oracle, key) -> dict:
    model, env = pretrainer.model, pretrainer.env
    base, layer = take(params, 0), model.n_layers // 2
    c = analysis.control
    cfg = ControllerConfig(width=model.width, code_dim=N_SUBGOALS, rank=c.rank, hidden=c.hidden)
    tokens = pretrainer.token_batches(c.batch, pretrainer.config.data.max_episode_steps)
    _, post_params = envs.make(pretrainer.config.env, tasks="post")
    train_key, run_key, oracle_key = jax.random.split(key, 3)
    trained = jax.jit(lambda k: train_controllers(model, base, tokens, k, layer, c.steps, cfg, c.lr, c.weight_decay)[0])
    controllers = trained(train_key)
    direct = jax.jit(lambda k: run_controlled(model, base, controllers, cfg, layer, env, post_params, k,
                                              oracle.episodes).success)(run_key)
    return {"layer": layer, "one_hot_codes_success": float(np.mean(direct)),
            "fitted_codes": code_oracle(model, base, controllers, cfg, layer, pretrainer, oracle_key, oracle.steps,
                                        oracle.batch, oracle.episodes, restarts=oracle.restarts)}


def main(_):
    logging.set_verbosity(logging.WARNING)
    pretrainer, params = load_pretrained(PRETRAINED.value)
    if pretrainer.config.env != "grid_pinpad":
        raise ValueError(f"the code oracle runs on the grid, not {pretrainer.config.env}")
    oracle = DISCOVER.value.eval.code_oracle
    if oracle.steps < 1:
        raise ValueError("discover_config.eval.code_oracle.steps must be >= 1")
    key = jax.random.key(DISCOVER.value.seed)
    discovered = load_discovered(DISCOVERY.value, "metacontroller")
    result = {"metacontroller": discovered_code_oracle(discovered, pretrainer, jax.random.fold_in(key, 0), oracle)}
    if POST_FIT.value:
        result["metacontroller_post_fit"] = discovered_code_oracle(discovered, pretrainer, jax.random.fold_in(key, 2),
                                                                   oracle, "post")
    if CHECK.value:
        result["supervised_check"] = supervised_check(pretrainer, params, ANALYSIS.value, oracle,
                                                      jax.random.fold_in(key, 1))
    Path(OUT.value).parent.mkdir(parents=True, exist_ok=True)
    Path(OUT.value).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
