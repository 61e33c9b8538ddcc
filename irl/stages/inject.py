"""Injection stage (AntPinpad): the metacontroller's colour codes, forced into new episodes
(irl/analysis/injection.py). Writes injection.json and injected_episodes.png (an episode
without injection, one with a colour's code from the switch step, one with the unseen
transition's code)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from absl import logging

import irl.envs as envs
from irl.analysis import injection
from irl.envs.render import render_ant, save_png
from irl.rl.internal_env import InternalEnv
from irl.spaces import for_env


def draw(path: Path, panels: list[tuple[injection.CodedEpisodes, int, str]]) -> None:
    """One image of episodes side by side: (episodes, index, title) each."""
    images = []
    for episodes, i, title in panels:
        final = jax.tree.map(lambda x: np.asarray(x)[i], episodes.final)
        length = int(np.asarray(episodes.alive)[i].sum())
        images.append(render_ant(final, np.asarray(episodes.xy)[i, : length + 1], title=title))
    save_png(np.concatenate(images, axis=1), path)


def first_reaching(episodes: injection.CodedEpisodes, colour: int, from_step: int, among=None) -> int:
    """The first episode (of `among`, a bool mask) entering `colour` from `from_step` on (else 0)."""
    hits = (np.asarray(episodes.entered)[:, from_step:] == colour).any(1)
    hits = hits if among is None else hits & among
    return int(np.argmax(hits)) if hits.any() else 0


def inject(config, discovery: str | Path, workdir: str | Path) -> dict:
    """config: experiments/configs/ant.py inject_config."""
    cfg = config.inject
    if cfg.collect_episodes < 1 or cfg.eval_episodes < 1 or cfg.switch_step < 0:
        raise ValueError(f"inject.collect_episodes and eval_episodes must be >= 1 and switch_step >= 0, got {cfg}")
    from irl.discovery import load_discovered

    discovered = load_discovered(discovery, "metacontroller")
    world, world_params = envs.make("ant_pinpad", tasks="any_pretrain")
    if cfg.switch_step >= int(world_params.time_limit):
        raise ValueError(f"inject.switch_step must be below T = {int(world_params.time_limit)}, got {cfg.switch_step}")
    env = InternalEnv.from_discovered(discovered, world, world_params, action_space=for_env("ant_pinpad")[0])
    frozen = jax.tree.map(lambda x: x[0], InternalEnv.frozen_params(discovered))  # the first pretrained model
    collect_key, eval_key = jax.random.split(jax.random.key(config.seed))

    # one compile per batch size
    run = jax.jit(lambda key, n, inject: injection.run(env, frozen, key, n, inject), static_argnums=1)
    no_injection = injection.Injection.make(np.zeros(discovered.mc_cfg.latent_dim))
    codes, counts = injection.colour_codes(jax.device_get(run(collect_key, cfg.collect_episodes,
                                                              no_injection)))
    summary = {"collect_episodes": cfg.collect_episodes, "eval_episodes": cfg.eval_episodes,
               "switch_step": cfg.switch_step, "codes_per_colour": counts.tolist(), "by_colour": {}}
    evaluate = lambda inject: jax.device_get(run(eval_key, cfg.eval_episodes, inject))
    plain = evaluate(no_injection)
    panels = [(plain, 0, "prior codes, no injection")]
    for colour in np.flatnonzero(counts):
        injected = evaluate(injection.Injection.make(codes[colour], step=cfg.switch_step))
        summary["by_colour"][str(colour)] = injection.reach_after_step(plain, injected, colour, cfg.switch_step)
        if len(panels) == 1:
            panels.append((injected, first_reaching(injected, colour, cfg.switch_step),
                           f"code of colour {colour} from step {cfg.switch_step}"))
    rates = [r for r in summary["by_colour"].values() if r["episodes"]]
    pooled = lambda key: (float(np.average([r[key] for r in rates], weights=[r["episodes"] for r in rates]))
                          if rates else None)
    summary["at_step"] = {"episodes": sum(r["episodes"] for r in rates),
                          "without_injection": pooled("without_injection"), "with_injection": pooled("with_injection")}
    first, then = cfg.unseen_transition
    summary["unseen_transition"] = None
    if counts[then]:
        injected = evaluate(injection.Injection.make(codes[then], after=first))
        summary["unseen_transition"] = {"first": first, "then": then,
                                        **injection.reach_after_colour(plain, injected, first, then)}
        after_first = injection.first_entry(injected.entered, first) < np.asarray(injected.entered).shape[1]
        panels.append((injected, first_reaching(injected, then, 0, after_first), f"code of {then} after {first}"))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "injection.json").write_text(json.dumps(summary, indent=2))
    draw(workdir / "injected_episodes.png", panels)
    logging.warning("injection: at step %d %s; unseen transition %s", cfg.switch_step, summary["at_step"],
                    summary["unseen_transition"])
    return summary
