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

import jax  # noqa: E402
import optax  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from irl.analysis import labelled_metacontroller as labelled  # noqa: E402
from irl.analysis.supervised_control import N_SUBGOALS  # noqa: E402
from irl.control import linear  # noqa: E402
from irl.control import metacontroller as mc  # noqa: E402
from irl.data import episode_tokens  # noqa: E402
from irl.discovery import Discoverer, action_measures, has_second_view, take  # noqa: E402

CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/grid.py:discover-small", "discovery config")
PRETRAINED = flags.DEFINE_string("pretrained", "runs/grid-small/pretrain", "pretraining workdir")
STEPS = flags.DEFINE_integer("steps", 2000, "decoder training steps (of the config's batch)")
LR = flags.DEFINE_float("lr", 3e-3, "AdamW learning rate (weight decay: the config's)")
SCALE = flags.DEFINE_float("scale", 3.0, "norm of each subgoal's code")


def fit_and_measure(config, discoverer: Discoverer, steps: int, lr: float, scale: float) -> tuple[dict, dict]:
    """(decoder params, {"controlled_action_nll", "second_view_action_nll" where the config has
    a second view}): a fresh decoder fitted on `steps` of discoverer's training batches, measured
    on the held-out episodes that discovery's own measures use (Discoverer.held_out)."""
    cfg = discoverer.method("metacontroller").mc_cfg
    base = take(discoverer.base_params, 0)
    optimizer = optax.adamw(lr, weight_decay=config.optim.weight_decay)
    second = has_second_view(config)

    def nlls(params, tokens, key):
        z = labelled.subgoal_codes(tokens.subgoal, key, cfg.latent_dim, N_SUBGOALS, "one_hot", scale)
        e = jax.lax.stop_gradient(discoverer.model.lower(base, tokens.obs, discoverer.layer))
        out, _ = discoverer.model.upper(base, mc.steer(params, z, e, cfg), discoverer.layer)
        controlled = action_measures(discoverer.action_space, out, tokens, config.train.action_targets)["action_nll"]
        view = discoverer.second_view(params, cfg, base, z, tokens, jax.random.fold_in(key, 2)) if second else 0.0
        return controlled + config.train.view_weight * view, (controlled, view)

    @jax.jit
    def train(params, key):
        def step(carry, step_key):
            params, opt_state = carry
            grads = jax.grad(lambda p: nlls(p, episode_tokens(discoverer.expert(step_key)), step_key)[0])(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))[0][0]

    key = jax.random.key(config.seed)
    params = train({"decoder": linear.init(jax.random.fold_in(key, 0), cfg.decoder)}, jax.random.fold_in(key, 1))
    controlled, view = jax.jit(nlls)(params, episode_tokens(discoverer.held_out()), jax.random.fold_in(key, 2))[1]
    result = {"controlled_action_nll": float(controlled)}
    if second:
        result["second_view_action_nll"] = float(view)
    return params, result


def main(_):
    logging.set_verbosity(logging.WARNING)
    config = CONFIG.value
    discoverer = Discoverer(config, PRETRAINED.value)
    _, result = fit_and_measure(config, discoverer, STEPS.value, LR.value, SCALE.value)
    print(json.dumps({**result, "steps": STEPS.value, "scale": SCALE.value}))


if __name__ == "__main__":
    app.run(main)
