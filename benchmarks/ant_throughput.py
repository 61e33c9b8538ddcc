"""AntPinpad against brax's plain MJX ant, in one run: environment steps per second.

Both run the same harness: a jitted `lax.scan` of control steps (5 physics steps each) over a
vmapped batch with uniformly random torques, median of several calls after a warm-up, the two
environments' calls taken in turn. No
auto-reset for either (episodes that end keep stepping), so both time exactly the same physics
plus, for AntPinpad, its pinpad bookkeeping and observation.

    python benchmarks/ant_throughput.py [--batches 64,1024] [--devices 1] [--steps 20]

`--devices 2` splits the batch over two XLA CPU devices (it sets
`--xla_force_host_platform_device_count` before JAX starts). Writes
benchmarks/results/ant_throughput_<devices>dev.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="64,1024")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="control steps per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.devices < 1 or any(b < 1 or b % args.devices for b in batches):
        parser.error("--devices must be >= 1 and divide every batch")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={args.devices}").strip()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import brax.envs
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import irl.envs as envs
    from irl.benchmarking import time_interleaved

    mesh = Mesh(jax.devices()[: args.devices], ("batch",))
    split = NamedSharding(mesh, PartitionSpec("batch"))

    def harness(reset, step, action_size, batch):
        """jitted key -> sum of rewards over `steps` control steps of `batch` envs."""
        keys = jax.device_put(jax.random.split(jax.random.key(0), batch), split)
        states = jax.jit(jax.vmap(reset), out_shardings=split)(keys)

        @jax.jit
        def run(states, key):
            def body(states, key):
                actions = jax.random.uniform(key, (batch, action_size), minval=-1.0, maxval=1.0)
                actions = jax.lax.with_sharding_constraint(actions, split)
                states, reward = jax.vmap(step)(states, actions)
                return states, reward.sum()

            return jax.lax.scan(body, states, jax.random.split(key, args.steps))[1].sum()

        return lambda: run(states, jax.random.key(1))

    env, params = envs.make("ant_pinpad")
    plain_env = brax.envs.get_environment("ant", backend="mjx")

    def pinpad_step(state, action):
        _, state, reward, _, _ = env.step(None, state, action, params)
        return state, reward

    def plain_step(state, action):
        state = plain_env.step(state, action)
        return state, state.reward

    pinpad = (lambda key: env.reset(key, params)[1], pinpad_step)
    plain = (plain_env.reset, plain_step)

    rows = {}
    for batch in batches:  # the two environments' calls taken in turn: their ratio holds on a noisy machine
        seconds = time_interleaved({name: harness(reset, step, 8, batch)
                                    for name, (reset, step) in (("AntPinpad", pinpad), ("brax MJX ant", plain))},
                                   repeats=args.repeats)
        for name, per_call in seconds.items():
            rows.setdefault(name, {})[batch] = batch * args.steps / per_call
            print(f"{name} batch {batch}: {rows[name][batch]:,.0f} steps/s", flush=True)
    ratio = {b: rows["AntPinpad"][b] / rows["brax MJX ant"][b] for b in batches}
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "jax": jax.__version__,
              "devices": args.devices, "steps_per_call": args.steps, "steps_per_s": rows, "ratio": ratio}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"ant_throughput_{args.devices}dev"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"Env steps/s (control steps of 0.05 s, random torques), {args.devices} XLA CPU device(s), "
             f"jax {jax.__version__}, median of {args.repeats} calls taken in turn.", "",
             "| environment | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---|" + "---:|" * len(batches)]
    for name, by_batch in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{by_batch[b]:,.0f}" for b in batches) + " |")
    lines.append("| **AntPinpad / plain ant** | " + " | ".join(f"{ratio[b]:.2f}x" for b in batches) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
