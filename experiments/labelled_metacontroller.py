"""A metacontroller fitted with the true subgoals (irl/analysis/labelled_metacontroller.py), to
measure what internal RL could do if discovery found one code per subgoal.

    python experiments/labelled_metacontroller.py --pretrained=runs/grid-small/pretrain \
        --workdir=runs/grid-small/labelled
    python experiments/rl.py --pretrained=runs/grid-small/pretrain --discovery=runs/grid-small/labelled \
        --workdir=runs/grid-small/labelled/rl --config.methods='("internal",)'

Fits the decoder, GRU and switch of the discovery config's metacontroller shape on its
batches, every pretrained model, and exports them as `<workdir>/metacontroller/`, which internal
RL reads as it reads discovery's. Writes `<workdir>/labelled.json`: the losses over training,
the switch's segmentation of held-out expert episodes (switch F1 as discovery reports it), and
the exported metacontroller acting alone (first model): codes drawn from the prior, where
internal RL's policy starts, subgoal by subgoal, and the code oracle through its decoder.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from irl.analysis import labelled_metacontroller as labelled  # noqa: E402
from irl.analysis.segmentation import segmentation_scores  # noqa: E402
from irl.analysis.supervised_control import N_SUBGOALS  # noqa: E402
from irl.data import episode_tokens  # noqa: E402
from irl.discovery import Discoverer, export, metacontroller_config, take  # noqa: E402
from irl.stages.discover import exported_measures  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:discover-small",
                                         "discovery config (metacontroller shape, batches, eval)")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
WORKDIR = flags.DEFINE_string("workdir", "runs/grid-small/labelled", "output folder")
STEPS = flags.DEFINE_integer("steps", 2000, "training steps (of the config's batch)")
LR = flags.DEFINE_float("lr", 3e-3, "AdamW learning rate (weight decay: the config's)")
LAYOUT = flags.DEFINE_enum("layout", "orthant", labelled.LAYOUTS, "where each subgoal's codes lie "
                           "(irl/analysis/labelled_metacontroller.py: subgoal_codes)")


def main(_):
    logging.set_verbosity(logging.WARNING)
    start = time.perf_counter()
    config = CONFIG.value
    if STEPS.value < 1:
        raise ValueError(f"--steps must be >= 1, got {STEPS.value}")
    labelled.check_layout(config.metacontroller.latent_dim, N_SUBGOALS, LAYOUT.value)  # before any loading
    discoverer = Discoverer(config, PRETRAINED.value)
    model, layer, space = discoverer.model, discoverer.layer, discoverer.action_space
    cfg = metacontroller_config(config, model.width)
    key = jax.random.key(config.seed)

    @jax.jit
    def fit(base, seed_key):
        return labelled.fit(cfg, model, base, discoverer.tokens, seed_key, layer, STEPS.value, N_SUBGOALS, LR.value,
                            config.optim.weight_decay, space, LAYOUT.value)

    fitted = [fit(take(discoverer.base_params, s), jax.random.fold_in(key, s)) for s in range(discoverer.seeds)]
    mc_params = jax.tree.map(lambda *x: np.stack(x), *[p for p, _ in fitted])
    train_seconds = time.perf_counter() - start

    episodes = discoverer.held_out()
    tokens = episode_tokens(episodes)
    measured = jax.jit(lambda p, base, k: labelled.teacher_forced(p, cfg, model, base, tokens, k, layer, N_SUBGOALS,
                                                                      LAYOUT.value))
    segmentation = []
    for s in range(discoverer.seeds):
        _, beta = measured(take(mc_params, s), take(discoverer.base_params, s), jax.random.fold_in(key, 1000 + s))
        segmentation.append(segmentation_scores(np.asarray(beta), np.asarray(episodes.mask),
                                                np.asarray(episodes.progress), config.eval.tolerance,
                                                discoverer.pretrainer.env.colors_per_subgoal))
    workdir = Path(WORKDIR.value)
    export(workdir, "metacontroller", model, layer, cfg, discoverer.base_params, mc_params, alpha=float("nan"))
    tail = max(1, STEPS.value // 10)
    result = {
        "steps": STEPS.value, "lr": LR.value, "layout": LAYOUT.value, "seeds": discoverer.seeds, "layer": layer,
        "train_last_tenth": {k: float(np.mean([np.mean(h[k][-tail:]) for _, h in fitted])) for k in fitted[0][1]},
        "held_out_segmentation": {k: float(np.mean([r[k] for r in segmentation])) for k in segmentation[0]},
        "train_seconds": train_seconds,
        **exported_measures(config, discoverer, workdir / "metacontroller"),
        "wall_seconds": time.perf_counter() - start,
    }
    (workdir / "labelled.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
