"""Environment throughput: GridPinpad against XLand-MiniGrid and NAVIX, in one run.

Every environment runs the same harness: a jitted `lax.scan` over steps of a vmapped batch
with uniformly random actions and automatic resets, the observation carried from step to step
(so it is computed, as in each library's own benchmarks). At each batch every environment is
compiled and warmed up, then the calls are taken in turn, round after round, and each keeps
the median of its calls: the ratios compare environments under the same machine load. Also
times the expert data generator in valid transitions per second.

Two ways to use the cores, each timed for every environment: one XLA device, which spreads
its kernels over the cores' threads, and (`--devices 2`) the batch split over two XLA CPU
devices, one rollout per device side by side (`jax.pmap`); the script sets
`--xla_force_host_platform_device_count` before JAX starts.

    python benchmarks/env_throughput.py [--batches 1,64,1024,8192] [--devices 1,2] [--repeats 7]

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
RESULTS = Path(__file__).parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,64,1024,8192")
    parser.add_argument("--devices", default="1,2", help="device counts to time (each divides the batch)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-batch", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS / "env_throughput"))
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.devices = [int(d) for d in args.devices.split(",")]
    if min(args.devices) < 1 or min(args.batches) < 1:
        parser.error("--devices and --batches must be positive")
    return args


if __name__ == "__main__":  # the device count must be set before JAX starts
    ARGS = parse_args()
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={max(ARGS.devices)}").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import irl.envs as envs  # noqa: E402
from irl.benchmarking import time_call, time_interleaved  # noqa: E402
from irl.data import make_expert_data  # noqa: E402
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


def on_devices(build, batch: int, steps: int, devices: int):
    """The rollout `build(batch, steps)` with the batch split evenly over `devices` devices: one
    rollout of batch // devices environments per device, side by side."""
    if devices == 1:
        return build(batch, steps)
    rollout = jax.pmap(build(batch // devices, steps))
    return lambda key: rollout(jax.random.split(key, devices))


def ratio_row(rows: dict, batches: list[int], use) -> str:
    """Cells of GridPinpad's best over the fastest peer's, among the rows `use(name)` keeps."""
    ours = [n for n in rows if n.startswith("GridPinpad") and use(n)]
    peers = [n for n in rows if not n.startswith(("GridPinpad", "(")) and use(n)]
    cells = []
    for b in batches:
        best_ours = max((rows[n].get(b, 0.0) for n in ours), default=0.0)
        best_peer = max((rows[n].get(b, 0.0) for n in peers), default=0.0)
        cells.append(f"{best_ours / best_peer:.2f}x" if best_ours and best_peer else "")
    return " | ".join(cells)


def label(name: str, devices: int) -> str:
    return name if devices == 1 else f"{name}, {devices} devices"


def main(args: argparse.Namespace) -> None:
    batches = args.batches
    key = jax.random.key(0)
    rows: dict[str, dict[int, float]] = {}
    devices_of: dict[str, int] = {}  # row label -> devices it ran on
    notes: list[str] = []
    builders = {"GridPinpad": grid_pinpad_rollout, STEPS_ONLY: grid_pinpad_steps_only, **PEERS}

    for batch in batches:
        steps = steps_for(batch)
        fns = {}
        for devices in [d for d in args.devices if batch % d == 0]:
            for name, build in builders.items():
                if devices > 1 and name == STEPS_ONLY:
                    continue
                try:
                    fns[label(name, devices)] = on_devices(build, batch, steps, devices)
                    devices_of[label(name, devices)] = devices
                except ImportError as err:
                    if not any(name in n for n in notes):
                        notes.append(f"{name}: skipped, not installed ({err.name}); pip install -e '.[bench]'")
        ended = int(fns["GridPinpad"](key)) / steps
        notes.append(f"GridPinpad batch {batch}: {ended:.1f} episodes end per step")
        for name, seconds in time_interleaved(fns, key, repeats=args.repeats).items():
            rows.setdefault(name, {})[batch] = batch * steps / seconds
            print(f"{name:52s} batch {batch:5d}: {batch * steps / seconds:12,.0f} steps/s", flush=True)

    env, params = envs.make("grid_pinpad")
    generate = make_expert_data(env, params, args.data_batch)
    seconds = time_call(generate, key, repeats=args.repeats)
    transitions = int(generate(key).mask.sum())
    data_rate = transitions / seconds
    print(f"expert data generator, batch {args.data_batch}: {data_rate:,.0f} transitions/s ({seconds * 1e3:.0f} ms per batch)")

    lines = [
        "# Environment throughput (steps/s, random actions, auto-reset, scanned and vmapped)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}. Median of {args.repeats} calls after warm-up, "
        "the environments of a batch called in turn. \"N devices\": the batch split over N XLA CPU devices.",
        "",
        "| environment | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for name in rows:
        cells = [f"{rows[name][b]:,.0f}" if b in rows[name] else "" for b in batches]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for devices in args.devices:
        ratio = ratio_row(rows, batches, lambda n, d=devices: devices_of[n] == d)
        lines.append(f"| **GridPinpad / fastest peer, {devices} device{'s' * (devices > 1)}** | {ratio} |")
    lines.append(f"| **best of either: GridPinpad / fastest peer** | {ratio_row(rows, batches, lambda n: True)} |")
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
    main(ARGS)
