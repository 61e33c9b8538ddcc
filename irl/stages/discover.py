"""Discovery stage: train the metacontroller (alpha sweep) and its baselines on a pretrained
base model, measure how their switching gates segment held-out expert episodes, export what
internal RL needs, and write `discovery.json` with the figures.

Each method trains in `<workdir>/<method>/` (checkpoints, metrics.jsonl, TensorBoard; a rerun
resumes). Measures come from held-out expert episodes as long as the base model's training
ones (the grid's whole time limit; the ant's first `data.max_episode_steps`), with z~ = mu
(the headline) and with sampled codes (`"sampled"`). The best alpha is the one whose gate
best matches the true subgoal boundaries (switch F1, then binary fraction, then action NLL):
the labels select among alphas, they never train anything. For the chosen metacontroller,
`"prior_codes"` runs it alone with codes drawn from its prior (where internal RL starts) on
the pretraining tasks and on the post-training task, subgoal by subgoal, and `"code_oracle"`
fits the best code per subgoal through its decoder and runs them on the post-training task
(the most internal RL could get from that decoder).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

import irl.envs as envs
from irl import training
from irl.analysis.codes import code_readout, grid_target_cells, subgoal_chain
from irl.analysis.segmentation import segmentation_scores, true_boundaries
from irl.data import ExpertBatch, episode_tokens
from irl.discovery import METHODS, Discoverer, Method, export, take
from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS
from irl.figures import plot_beta_traces, plot_rate_distortion

SCALARS = ("kl", "action_nll", "agreement")


def measure(discoverer: Discoverer, method: Method, analyse, params: dict, episodes: ExpertBatch, tolerance: int,
            keep_episodes: int = 0, read_codes: bool = True) -> tuple[list[dict], list[np.ndarray]]:
    """Per alpha: seed-averaged measures on `episodes` (z~ = mu; under "sampled", sampled
    codes; with read_codes, for the metacontroller's methods, also "hard_switch_action_nll",
    the action NLL with each code held exactly between switches as internal RL holds it, and
    "code_readout", what the codes tell about each segment: irl/analysis/codes.py), and the
    mu-gates [keep_episodes, T] of seed 0 for the figures. analyse: the method's
    `Discoverer.analyse_fn` (made once, so it compiles once)."""
    tokens = episode_tokens(episodes)
    mask, progress = np.asarray(episodes.mask), np.asarray(episodes.progress)
    subgoal, actions = np.asarray(episodes.subgoal), np.asarray(episodes.actions)
    colors_per_subgoal = discoverer.pretrainer.env.colors_per_subgoal
    read_codes = read_codes and method.mc_cfg is not None
    target_cells = None
    if read_codes and discoverer.pretrainer.config.env == "grid_pinpad":
        target_cells = grid_target_cells(np.asarray(tokens.obs), subgoal, GRID_SIZE, N_CHANNELS, colors_per_subgoal)
    mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    by_alpha, gates = [], []
    for a, alpha in enumerate(method.alphas):
        per_seed = {"mu": [], "sampled": []}
        hard_nll, readouts = [], []
        for seed in range(discoverer.seeds):
            trainable, base = take(params, seed, a), discoverer.base_of(method, params, seed, a)
            key = jax.random.fold_in(discoverer.eval_key, 2 + seed)
            for mode in per_seed:
                out = jax.device_get(analyse(trainable, base, tokens, key, sample=mode == "sampled"))
                scores = segmentation_scores(np.asarray(out["beta"]), mask, progress, tolerance, colors_per_subgoal)
                per_seed[mode].append({**scores, **{k: float(out[k]) for k in SCALARS}})
                if mode == "mu":
                    mu_out = out
            if seed == 0:
                gates.append(np.asarray(mu_out["beta"])[:keep_episodes])
            if read_codes:
                hard = analyse(trainable, base, tokens, key, sample=False, hard_switch=True)
                hard_nll.append(float(hard["action_nll"]))
                readouts.append(code_readout(mu_out["z"], mask, subgoal, actions, target_cells, tolerance))
        row = {"alpha": alpha, **mean(per_seed["mu"]), "sampled": mean(per_seed["sampled"]),
               "f1_by_seed": [r["f1"] for r in per_seed["mu"]]}
        if read_codes:
            row["hard_switch_action_nll"] = float(np.mean(hard_nll))
            row["code_readout"] = {label: mean([r[label] for r in readouts]) for label in readouts[0]}
        by_alpha.append(row)
    return by_alpha, gates


def prior_code_chain(discovered, env_name: str, tasks: str, key: jax.Array, n_episodes: int) -> dict:
    """The exported metacontroller acting alone on `tasks` with a fresh code drawn from its
    prior N(0, I) at every switch (what internal RL's policy starts from), in the internal-RL
    environment, first pretrained model: success, decisions per episode and how far episodes
    get subgoal by subgoal (irl/analysis/codes.py). Where the chain breaks tells which
    transitions the prior's codes reach."""
    from irl.rl.common import standard_normal
    from irl.rl.internal_env import InternalEnv
    from irl.spaces import for_env

    world, params = envs.make(env_name, tasks=tasks)
    env = InternalEnv.from_discovered(discovered, world, params, action_space=for_env(env_name)[0])
    frozen = jax.tree.map(lambda x: x[0], InternalEnv.frozen_params(discovered))
    latent = discovered.mc_cfg.latent_dim

    def prior(state, e, keys):
        return state, standard_normal(keys, latent), jnp.zeros(keys.shape)

    trajectory = jax.device_get(jax.jit(lambda k: env.rollout(frozen, k, n_episodes, prior, ())[0])(key))
    n_subgoals = int(np.max(np.asarray(params.task_lens))) // world.colors_per_subgoal
    return {"episodes": n_episodes, "success": float(np.mean(trajectory.success)),
            "decisions_per_episode": float(np.mean(trajectory.decision.sum(1))),
            "subgoals": subgoal_chain(trajectory.progress, n_subgoals, world.colors_per_subgoal)}


def code_oracle(model, base_params, decoder: dict, decoder_cfg, layer: int, pretrainer, key: jax.Array, steps: int,
                batch: int, eval_episodes: int, fit_on: str = "pretrain", restarts: int = 1) -> dict:
    """The ceiling internal RL has on a decoder (a code -> controller map, here a discovered
    metacontroller's, frozen): one code per subgoal fitted through it on the pretraining
    tasks' expert episodes with the true subgoal (as the supervised controllers are,
    irl/analysis/supervised_control.py), then switched by the true progress on the
    post-training task. Where the supervised controllers succeed and this does not, the decoder
    cannot express the unseen transitions, whatever a policy chooses. One base model's params.

    The fit starts from a draw of the prior and can stall (codes grown far outside it), so
    `restarts` tables are fitted from their own draws and each is run on the same episodes;
    "success" is the best of them (each is a choice of codes a policy could make), and
    "by_restart" gives every table's fit and success.

    fit_on="post" (the grid; an upper bound that uses what RL never sees): one code per
    subgoal *position* of the post-training task, fitted on the expert's episodes of that task,
    so a code may depend on what came before, as a policy's may."""
    from irl.analysis.supervised_control import N_SUBGOALS, codes_as_controllers, run_controlled, train_subgoal_codes
    from irl.data import episode_tokens, make_expert_data
    from irl.stages.control import subgoal_completion

    if fit_on not in ("pretrain", "post"):
        raise ValueError(f"fit_on must be 'pretrain' or 'post', got {fit_on!r}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    env, action_space = pretrainer.env, pretrainer.action_space
    _, post_params = envs.make(pretrainer.config.env, tasks="post")
    per_subgoal = env.colors_per_subgoal
    n_post_subgoals = int(post_params.task_lens[0]) // per_subgoal
    if fit_on == "pretrain":
        n_codes, code_of = N_SUBGOALS, None
        tokens = pretrainer.token_batches(batch, pretrainer.config.data.max_episode_steps)
    else:
        n_codes = n_post_subgoals
        position = lambda progress: jnp.minimum(progress // per_subgoal, n_codes - 1)
        code_of = lambda state: position(state.progress)
        demos = make_expert_data(env, post_params, batch)

        def tokens(key):
            episodes = demos(key)
            return episode_tokens(episodes.replace(subgoal=position(episodes.progress)))
    table_cfg = dataclasses.replace(decoder_cfg, code_dim=n_codes)

    @jax.jit
    def fit_and_run(key):
        fit_key, run_key = jax.random.split(key)
        codes, history = train_subgoal_codes(model, base_params, decoder, decoder_cfg, tokens, fit_key, layer, steps,
                                             action_space=action_space, n_codes=n_codes, restarts=restarts)
        run = lambda table: run_controlled(model, base_params, codes_as_controllers(decoder, table), table_cfg, layer,
                                           env, post_params, run_key, eval_episodes, action_space=action_space,
                                           code_of=code_of)
        return codes, history, jax.vmap(run)(codes)

    codes, history, episodes = jax.device_get(fit_and_run(key))
    tail = max(1, steps // 10)
    by_restart = []
    for r in range(restarts):
        success = np.asarray(episodes.success[r])
        nll = np.asarray(history["nll"][:, r])
        by_restart.append({
            "success": float(success.mean()),
            "subgoal_completion": subgoal_completion(np.asarray(episodes.progress[r]), success, n_post_subgoals,
                                                     per_subgoal),
            "train_action_nll": {"first": float(np.mean(nll[:tail])), "last": float(np.mean(nll[-tail:]))},
            "code_norms": np.linalg.norm(codes[r], axis=-1).tolist()})
    best = max(range(restarts), key=lambda r: by_restart[r]["success"])
    return {"fit_on": fit_on, "steps": steps, "episodes": eval_episodes, "restarts": restarts, "best_restart": best,
            **by_restart[best], "by_restart": by_restart}


def discovered_code_oracle(discovered, pretrainer, key: jax.Array, oracle, fit_on: str = "pretrain") -> dict:
    """`code_oracle` on an exported metacontroller's decoder, first pretrained model; oracle:
    the config's eval.code_oracle (steps, batch, episodes, restarts)."""
    return code_oracle(discovered.model, take(discovered.base_params, 0), take(discovered.mc_params, 0)["decoder"],
                       discovered.mc_cfg.decoder, discovered.layer, pretrainer, key, oracle.steps, oracle.batch,
                       oracle.episodes, fit_on, oracle.restarts)


def exported_measures(config, discoverer: Discoverer, folder: Path) -> dict:
    """What the exported metacontroller does in closed loop: "prior_codes" (its codes drawn
    from the prior, `prior_code_chain`) and "code_oracle" (`code_oracle` on its decoder), each
    where the config asks for it."""
    from irl.discovery import load_discovered

    out = {}
    if config.eval.prior_episodes == 0 and config.eval.code_oracle.steps == 0:
        return out
    discovered = load_discovered(folder.parent, folder.name)
    if config.eval.prior_episodes > 0:
        out["prior_codes"] = {
            tasks: prior_code_chain(discovered, discoverer.pretrainer.config.env, tasks,
                                    jax.random.fold_in(discoverer.eval_key, 100 + i), config.eval.prior_episodes)
            for i, tasks in enumerate(("pretrain", "post"))}
    if config.eval.code_oracle.steps > 0:
        out["code_oracle"] = discovered_code_oracle(discovered, discoverer.pretrainer,
                                                    jax.random.fold_in(discoverer.eval_key, 200), config.eval.code_oracle)
    return out


def best_index(by_alpha: list[dict]) -> int:
    return max(range(len(by_alpha)), key=lambda i: (round(by_alpha[i]["f1"], 6), round(by_alpha[i]["binary_fraction"], 6),
                                                    -by_alpha[i]["action_nll"]))


def nearest_index(alphas, alpha: float) -> int:
    return int(np.argmin([abs(a - alpha) for a in alphas]))


def progress_evaluator(discoverer: Discoverer, method: Method, analyse, tolerance: int):
    """An in-training evaluation callback: per alpha, seed-mean held-out F1, KL and NLL."""
    episodes = discoverer.held_out(progress=True)

    def evaluate(state):
        by_alpha, _ = measure(discoverer, method, analyse, state["params"], episodes, tolerance, read_codes=False)
        suffix = (lambda a: "") if len(method.alphas) == 1 else (lambda a: f"/alpha={a:g}")
        return {f"eval/{k}{suffix(r['alpha'])}": r[k] for r in by_alpha
                for k in ("f1", "binary_fraction", "switches_per_episode", "kl", "action_nll")}

    return evaluate


def headline(row: dict, metric: str) -> dict:
    """The discovery.json names of one method's measures (metric: the action space's)."""
    return {
        "alpha": row["alpha"],
        "switch_f1": row["f1"],
        "precision": row["precision"],
        "recall": row["recall"],
        "beta_binary_fraction": row["binary_fraction"],
        "switches_per_episode": row["switches_per_episode"],
        "subgoals_per_episode": row["subgoals_per_episode"],
        "mean_beta": row["mean_beta"],
        "kl": row["kl"],
        "action_nll": row["action_nll"],
        f"action_{metric}": row["agreement"],
        "sampled": row["sampled"],
        **{k: row[k] for k in ("hard_switch_action_nll", "code_readout") if k in row},
    }


def discover(config, pretrained: str | Path, workdir: str | Path, progress: bool = True) -> dict:
    """Train (or resume) every method in config.methods and write discovery.json; returns it."""
    start = time.perf_counter()
    discoverer = Discoverer(config, pretrained)  # validates the config before any compute
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json(indent=2))
    tolerance, keep = config.eval.tolerance, config.eval.figure_episodes
    episodes = discoverer.held_out()
    mask = np.asarray(episodes.mask)
    boundaries = true_boundaries(np.asarray(episodes.progress), mask, discoverer.pretrainer.env.colors_per_subgoal)
    metric = discoverer.action_space.metric

    summary: dict = {"layer": discoverer.layer, "seeds": discoverer.seeds, "alphas": list(config.alphas),
                     "held_out_episodes": config.eval.episodes, "tolerance": tolerance}
    seconds, train_seconds, traces, best_alpha = {}, {}, {}, None
    for name in (m for m in METHODS if m in config.methods):  # the metacontroller first: beta1 needs its alpha
        method_start = time.perf_counter()
        method = discoverer.method(name, alpha=best_alpha if name == "beta1" and config.beta1.alpha < 0 else None)
        analyse = discoverer.analyse_fn(method)
        state = training.run(
            workdir / name, lambda: discoverer.init_state(method), discoverer.chunk_fn(method),
            total_steps=method.steps, chunk_steps=config.train.chunk_steps,
            evaluate=progress_evaluator(discoverer, method, analyse, tolerance), eval_every=config.train.eval_every,
            description=f"discover/{name}", progress=progress,
        )
        by_alpha, gates = measure(discoverer, method, analyse, state["params"], episodes, tolerance, keep)
        if name == "metacontroller":
            chosen = config.alphas.index(config.best_alpha) if config.best_alpha >= 0 else best_index(by_alpha)
            best_alpha = method.alphas[chosen]
        else:
            chosen = nearest_index(method.alphas, best_alpha) if best_alpha is not None else best_index(by_alpha)
        result = headline(by_alpha[chosen], metric)
        if len(method.alphas) > 1 or name == "metacontroller":  # the swept method: its curve, even of one
            result["by_alpha"] = [dict(headline(r, metric), f1_by_seed=r["f1_by_seed"]) for r in by_alpha]
        result["train_steps"] = int(state["step"])
        summary[name] = result
        traces[f"{name} (alpha={method.alphas[chosen]:g})"] = (gates[chosen], mask[:keep], boundaries[:keep])
        if name in ("metacontroller", "beta1", "cotrained"):
            base = discoverer.base_params if method.frozen_base else take(state["params"]["base"], slice(None), chosen)
            export(workdir, name, discoverer.model, discoverer.layer, method.mc_cfg, base,
                   take(state["params"]["mc"], slice(None), chosen), method.alphas[chosen])
        if name == "metacontroller":  # the exported metacontroller acting: prior codes, the code oracle
            result.update(exported_measures(config, discoverer, workdir / name))
        seconds[name] = time.perf_counter() - method_start
        train_seconds[name] = float(state["elapsed"])
        logging.warning("%s: alpha %g, switch F1 %.3f, binary %.3f, switches/ep %.2f (subgoals/ep %.2f)", name,
                        method.alphas[chosen], result["switch_f1"], result["beta_binary_fraction"],
                        result["switches_per_episode"], result["subgoals_per_episode"])

    if "metacontroller" in summary:
        mc_result = summary["metacontroller"]
        summary.update({"best_alpha": best_alpha, "by_alpha": mc_result["by_alpha"],
                        **{k: mc_result[k] for k in ("switch_f1", "beta_binary_fraction", "switches_per_episode",
                                                     "subgoals_per_episode", "precision", "recall", "kl",
                                                     "action_nll", "hard_switch_action_nll", "code_readout",
                                                     "prior_codes", "code_oracle") if k in mc_result}})
    summary["method_seconds"] = seconds
    summary["train_seconds"] = train_seconds
    summary["wall_seconds"] = time.perf_counter() - start
    (workdir / "discovery.json").write_text(json.dumps(summary, indent=2))

    plot_beta_traces(workdir / "beta_traces.png", traces, title=f"Switching gate on held-out expert episodes, layer {discoverer.layer}")
    # the distortion a rate buys is measured with sampled codes (the KL prices exactly those)
    curves = {f"{label} base model": ([r["kl"] for r in summary[name]["by_alpha"]],
                                      [r["sampled"]["action_nll"] for r in summary[name]["by_alpha"]],
                                      [r["alpha"] for r in summary[name]["by_alpha"]])
              for name, label in (("metacontroller", "frozen pretrained"), ("cotrained", "co-trained"))
              if name in summary and "by_alpha" in summary[name]}
    points = {f"{name} (alpha={summary[name]['alpha']:g})": (summary[name]["kl"], summary[name]["sampled"]["action_nll"])
              for name in ("beta1", "compile") if name in summary}
    plot_rate_distortion(workdir / "rate_distortion.png", curves, points,
                         title="Rate-distortion over alpha (held-out, sampled codes)")
    return summary
