"""Environment throughput: GridPinpad against XLand-MiniGrid and NAVIX, in one run.

Every environment runs the same harness: a jitted `lax.scan` over steps of a vmapped batch
with uniformly random actions and automatic resets, the observation carried from step to step
(so it is computed, as in each library's own benchmarks). At each batch every environment is
compiled and warmed up, then the calls are taken in turn, round after round, and each keeps
the median of its calls: the ratios compare environments under the same machine load. Also
times the expert data generator in valid transitions per second.

    python benchmarks/env_throughput.py [--batches 1,64,1024,8192] [--repeats 7]

Writes benchmarks/results/env_throughput.{json,md}. Peers come from the `bench` extra
(`pip install -e '.[bench]'`); a peer that is not installed is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import irl.envs as envs  # noqa: E402
from irl.benchmarking import time_call, time_interleaved  # noqa: E402
from irl.data import make_expert_data  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STEPS_ONLY = "(GridPinpad steps only, no resets)"


def steps_for(batch: int) -> int:
    """Scan length: long enough that one call takes a measurable time at small batches."""
    return max(100, 32768 // batch)


def grid_pinpad_rollout(batch: int, steps: int, reset_capacity: int | None = None):
    env, params = envs.make("grid_pinpad")
    vec = envs.AutoResetVec(env, batch, reset_capacity)

    def rollout(key):
        obs, state = vec.reset(key, params)

        def body(carry, key):
            obs, state = carry
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (batch,), 0, env.n_actions)
            obs, state, _, done, info = vec.step(step_key, state, actions, params)
            return (obs, state), jnp.sum(done)

        _, done = jax.lax.scan(body, (obs, state), jax.random.split(key, steps))
        return done.sum()

    return jax.jit(rollout)


def grid_pinpad_steps_only(batch: int, steps: int):
    """Diagnostic: the same rollout without resets (finished episodes keep stepping), to show
    what a step costs apart from drawing new layouts."""
    env, params = envs.make("grid_pinpad")
    vec = envs.AutoResetVec(env, batch)
    step = jax.vmap(env.step, (None, 0, 0, None))

    def rollout(key):
        obs, state = vec.reset(key, params)

        def body(carry, key):
            actions = jax.random.randint(key, (batch,), 0, env.n_actions)
            obs, state, *_ = step(key, carry[1], actions, params)
            return (obs, state), None

        return jax.lax.scan(body, (obs, state), jax.random.split(key, steps))[0]

    return jax.jit(rollout)


def xland_rollout(name: str, batch: int, steps: int):
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(name)
    env = GymAutoResetWrapper(env)
    n_actions = env.num_actions(params)

    def rollout(key):
        timestep = jax.vmap(env.reset, (None, 0))(params, jax.random.split(key, batch))

        def body(timestep, key):
            actions = jax.random.randint(key, (batch,), 0, n_actions)
            return jax.vmap(env.step, (None, 0, 0))(params, timestep, actions), None

        return jax.lax.scan(body, timestep, jax.random.split(key, steps))[0]

    return jax.jit(rollout)


def navix_rollout(name: str, batch: int, steps: int):
    import navix

    env = navix.make(name)  # navix environments reset themselves when an episode ends
    n_actions = env.action_space.n

    def rollout(key):
        timestep = jax.vmap(env.reset)(jax.random.split(key, batch))

        def body(timestep, key):
            actions = jax.random.randint(key, (batch,), 0, n_actions)
            return jax.vmap(env.step)(timestep, actions), None

        return jax.lax.scan(body, timestep, jax.random.split(key, steps))[0]

    return jax.jit(rollout)


PEERS = {
    "XLand-MiniGrid MiniGrid-Empty-8x8": lambda b, s: xland_rollout("MiniGrid-Empty-8x8", b, s),
    "XLand-MiniGrid XLand-MiniGrid-R1-9x9": lambda b, s: xland_rollout("XLand-MiniGrid-R1-9x9", b, s),
    "NAVIX Navix-Empty-8x8-v0": lambda b, s: navix_rollout("Navix-Empty-8x8-v0", b, s),
    "NAVIX Navix-DoorKey-Random-8x8-v0": lambda b, s: navix_rollout("Navix-DoorKey-Random-8x8-v0", b, s),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,64,1024,8192")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-batch", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS / "env_throughput"))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    key = jax.random.key(0)
    rows: dict[str, dict[int, float]] = {}
    notes: list[str] = []

    for batch in batches:
        steps = steps_for(batch)
        rollout = grid_pinpad_rollout(batch, steps)
        notes.append(f"GridPinpad batch {batch}: {int(rollout(key)) / steps:.1f} episodes end per step")
        fns = {"GridPinpad": rollout, STEPS_ONLY: grid_pinpad_steps_only(batch, steps)}
        for name, build in PEERS.items():
            try:
                fns[name] = build(batch, steps)
            except ImportError as err:
                if not any(name in n for n in notes):
                    notes.append(f"{name}: skipped, not installed ({err.name}); pip install -e '.[bench]'")
        for name, seconds in time_interleaved(fns, key, repeats=args.repeats).items():
            rows.setdefault(name, {})[batch] = batch * steps / seconds
            print(f"{name:42s} batch {batch:5d}: {batch * steps / seconds:12,.0f} steps/s", flush=True)

    env, params = envs.make("grid_pinpad")
    generate = make_expert_data(env, params, args.data_batch)
    seconds = time_call(generate, key, repeats=args.repeats)
    transitions = int(generate(key).mask.sum())
    data_rate = transitions / seconds
    print(f"expert data generator, batch {args.data_batch}: {data_rate:,.0f} transitions/s ({seconds * 1e3:.0f} ms per batch)")

    peers = [n for n in rows if not n.startswith(("GridPinpad", "("))]
    ours = [n for n in rows if n.startswith("GridPinpad")]
    lines = [
        "# Environment throughput (steps/s, random actions, auto-reset, scanned and vmapped)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}. Median of {args.repeats} calls after warm-up, "
        "the environments of a batch called in turn.",
        "",
        "| environment | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for name in ours + [STEPS_ONLY] + peers:
        cells = [f"{rows[name][b]:,.0f}" if b in rows[name] else "" for b in batches]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if peers:
        best_ours = {b: max(rows[n].get(b, 0.0) for n in ours) for b in batches}
        best_peer = {b: max(rows[n].get(b, 0.0) for n in peers) for b in batches}
        cells = [f"{best_ours[b] / best_peer[b]:.2f}x" if best_peer[b] else "" for b in batches]
        lines.append("| **GridPinpad / fastest peer** | " + " | ".join(cells) + " |")
    lines += ["", f"Expert data generator (batch {args.data_batch}, eps=0, pretraining tasks): "
              f"{data_rate:,.0f} valid transitions/s, {seconds * 1e3:.0f} ms per batch."]
    lines += [""] + [f"- {n}" for n in notes]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(report)
    payload = {"steps_per_s": rows, "data_transitions_per_s": data_rate, "notes": notes, "jax": jax.__version__,
               "cpu_count": os.cpu_count(), "repeats": args.repeats}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
