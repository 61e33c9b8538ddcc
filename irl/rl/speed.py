"""How fast the internal-RL environment runs, in its two forms, under vmap on this machine.

    python -m irl.rl.speed [--batches 16,64,256] [--arch transformer] [--policy_width 128]
    python -m irl.rl.speed --discovery=DIR [--rollout_steps 0,200,300] [--batch 128]

The second form times what training pays: the learner's update (collect, then PPO) on a
discovered metacontroller at the rl-small settings, for slots that play one episode each
(rollout_steps 0) against slots that play episodes back to back; it reports episodes per
second and each setting's ratio to the first, all in one run.

- fixed-shape: `InternalEnv.rollout`, one lax.scan over the T raw steps of a batch in lockstep,
  the policy queried every step and kept only where a decision is due;
- while-loop: `InternalEnv.reset` / `step` vmapped over the batch, an outer while_loop over
  decisions, each `step` a while_loop over raw steps until the switch fires.
Both run the same base model, metacontroller (random, its switch made to fire now and then)
and policy; speed is counted in real raw steps (steps episodes actually took) per second.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import irl.envs as envs
from irl.control import metacontroller
from irl.control.discovered import Discovered
from irl.models.base import make_base_model
from irl.rl import policy
from irl.rl.internal_env import InternalEnv


def random_discovered(arch: str = "transformer", n_layers: int = 4, width: int = 128) -> Discovered:
    """A random base model of the small preset's shape and a random metacontroller whose switch
    fires on roughly a sixth of the steps."""
    fields = dict(n_layers=n_layers, width=width, mlp_width=2 * width, encoder="agent_relative")
    if arch == "transformer":
        fields.update(n_heads=4, head_dim=width // 4)
    model = make_base_model(arch, **fields)
    cfg = metacontroller.MetacontrollerConfig(width=width)
    mc = metacontroller.init(jax.random.key(1), cfg)
    w = jax.random.normal(jax.random.key(2), mc["switch"]["out"]["w"].shape) * 3.0 / cfg.switch_hidden**0.5
    mc = {**mc, "switch": {**mc["switch"], "out": {**mc["switch"]["out"], "w": w}}}
    add_seed_axis = lambda tree: jax.tree.map(lambda x: x[None], tree)
    return Discovered(model, add_seed_axis(model.init(jax.random.key(0))), cfg, add_seed_axis(mc), n_layers // 2)


def _timed(fn, key, repeats: int) -> tuple[float, int]:
    jax.block_until_ready(fn(key))  # compile
    start, steps = time.perf_counter(), 0
    for i in range(repeats):
        steps += int(fn(jax.random.fold_in(key, i + 1)))
    return time.perf_counter() - start, steps


def measure(discovered: Discovered, batch: int, policy_width: int = 128, repeats: int = 3) -> dict:
    """Real raw steps per second of both forms for one batch size."""
    env, post = envs.make("grid_pinpad", tasks="post")
    ienv = InternalEnv.from_discovered(discovered, env, post)
    frozen = jax.tree.map(lambda x: x[0], InternalEnv.frozen_params(discovered))
    cfg = policy.PolicyConfig(input_width=discovered.model.width, latent_dim=discovered.mc_cfg.latent_dim,
                              width=policy_width, n_heads=4, mlp_width=2 * policy_width)
    params = policy.init(jax.random.key(3), cfg)

    @jax.jit
    def fixed_shape(key):
        decide = lambda s, e, k: policy.step(params, cfg, s, e, k)
        traj, _ = ienv.rollout(frozen, key, batch, decide, policy.initial_state(cfg, (batch,)))
        return traj.length.sum()

    def one_episode(key):
        reset_key, action_key, policy_key = jax.random.split(key, 3)
        e, state = ienv.reset(frozen, reset_key)

        def decide_and_act(carry):
            e, state, pstate, k = carry
            pstate, z, _ = policy.step(params, cfg, pstate, e, jax.random.fold_in(policy_key, k))
            e, state, _, _, _ = ienv.step(frozen, action_key, state, z)
            return e, state, pstate, k + 1

        _, state, _, _ = jax.lax.while_loop(lambda c: ~c[1].done, decide_and_act,
                                            (e, state, policy.initial_state(cfg), jnp.int32(0)))
        return state.length

    @jax.jit
    def while_loop(key):
        return jax.vmap(one_episode)(jax.random.split(key, batch)).sum()

    key = jax.random.key(4)
    fixed_s, fixed_steps = _timed(fixed_shape, key, repeats)
    loop_s, loop_steps = _timed(while_loop, key, repeats)
    paid = repeats * batch * ienv.max_steps
    return {"batch": batch, "fixed_shape_steps_per_s": fixed_steps / fixed_s, "while_loop_steps_per_s": loop_steps / loop_s,
            "fixed_shape_paid_steps_per_s": paid / fixed_s, "mean_length": fixed_steps / (repeats * batch)}


def measure_back_to_back(discovered: Discovered, rollout_steps: list[int], batch: int, updates: int = 2,
                         repeats: int = 5) -> list[dict]:
    """Per setting of train.rollout_steps: the median seconds of a chunk of `updates` updates
    (one run, rl-small settings, after a warm-up chunk), episodes per update, episodes per
    second, and raw steps per second taken (by some episode) and paid (slots x steps)."""
    from experiments.configs.grid import rl_config
    from irl.rl.learner import make_train

    results = []
    for steps in rollout_steps:
        config = rl_config("small")
        config.update(models=1, rl_seeds=1, methods=("internal",))
        config.train.update(batch=batch, chunk_updates=updates, updates=updates, rollout_steps=steps)
        learner = make_train(config, "internal", discovered)
        chunk, state = learner.chunk_fn(), learner.init_state()
        state, metrics = jax.block_until_ready(chunk(state))  # compile and warm up
        seconds, episodes, lengths = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            state, metrics = jax.block_until_ready(chunk(state))
            seconds.append(time.perf_counter() - start)
            episodes.append(float(jnp.mean(metrics["episodes"])))
            lengths.append(float(jnp.mean(metrics["length"])))
        median = float(np.median(seconds))
        per_update = float(np.mean(episodes))
        results.append({"rollout_steps": steps or learner.internal_env.max_steps,
                        "seconds_per_update": median / updates, "episodes_per_update": per_update,
                        "mean_length": float(np.mean(lengths)),
                        "episodes_per_s": per_update * updates / median,
                        "taken_steps_per_s": per_update * float(np.mean(lengths)) * updates / median,
                        "paid_steps_per_s": learner.paid_steps_per_update() * updates / median})
    for r in results:
        r["episodes_per_s_ratio"] = r["episodes_per_s"] / results[0]["episodes_per_s"]
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="16,64,256")
    parser.add_argument("--arch", default="transformer")
    parser.add_argument("--policy_width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--discovery", default="", help="a discovery workdir: time back-to-back episodes on it")
    parser.add_argument("--rollout_steps", default="0,200,300")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", default="", help="write the back-to-back results here as JSON")
    args = parser.parse_args()
    if args.discovery:
        from irl.discovery import load_discovered
        results = measure_back_to_back(load_discovered(args.discovery, "metacontroller"),
                                       [int(s) for s in args.rollout_steps.split(",")], args.batch,
                                       repeats=args.repeats)
        for r in results:
            print(json.dumps(r), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps({"batch": args.batch, "discovery": args.discovery,
                                                  "device": jax.devices()[0].device_kind, "results": results},
                                                 indent=2))
        return
    discovered = random_discovered(args.arch)
    print(f"{'batch':>6} {'fixed-shape':>12} {'(paid T)':>10} {'while-loop':>11} {'mean length':>12}   real raw steps/s")
    for batch in map(int, args.batches.split(",")):
        r = measure(discovered, batch, args.policy_width, args.repeats)
        print(f"{batch:>6} {r['fixed_shape_steps_per_s']:>12.0f} {r['fixed_shape_paid_steps_per_s']:>10.0f} "
              f"{r['while_loop_steps_per_s']:>11.0f} {r['mean_length']:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
