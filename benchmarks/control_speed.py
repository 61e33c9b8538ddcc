"""Supervised-controller training step speed: one episode per row against episodes packed as in
pretraining (what `irl/stages/control.py` now trains on).

    python benchmarks/control_speed.py [--repeats 5] [--steps 20]

On the `small` grid preset's model (random weights: the speed does not depend on them), times a
jitted run of `--steps` controller training steps at layer L/2 (fresh expert episodes every
step, included), the two layouts' calls taken in turn, median of `--repeats` after a warm-up.
The work is proportional to the tokens a step processes, padding included: 64 episodes one per
row pay for 64 x 80 tokens, of which the expert's ~31-step episodes fill about 40%; 65 episodes
packed 5 to a 128-token row pay for 13 x 128, nearly all real steps (the fifth episode of a row
is cut where the row ends, as in pretraining).
Writes benchmarks/results/control_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from experiments.configs.grid import analysis_config, pretrain_config  # noqa: E402
from irl.analysis.supervised_control import N_SUBGOALS, train_controllers  # noqa: E402
from irl.benchmarking import time_interleaved  # noqa: E402
from irl.control.linear import ControllerConfig  # noqa: E402
from irl.data import episode_tokens  # noqa: E402
from irl.pretraining import Pretrainer  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    trainer = Pretrainer(pretrain_config("small"))
    model, max_steps = trainer.model, trainer.config.data.max_episode_steps
    params = model.init(jax.random.key(0))
    control = analysis_config("small").control
    cfg = ControllerConfig(width=model.width, code_dim=N_SUBGOALS, rank=control.rank, hidden=control.hidden)
    layer = model.n_layers // 2
    unpacked = 64
    one_per_row = trainer.expert_data(unpacked, max_steps)
    layouts = {
        f"{unpacked} episodes, one per row ({unpacked} x {max_steps})": lambda key: episode_tokens(one_per_row(key)),
        f"{control.batch} episodes packed ({control.batch // trainer.config.data.episodes_per_row} x "
        f"{trainer.config.data.pack_length})": trainer.token_batches(control.batch, max_steps),
    }
    fns, rows = {}, {}
    for name, tokens in layouts.items():
        sample = tokens(jax.random.key(1))
        rows[name] = {"tokens_per_step": int(sample.mask.size), "real_tokens_per_step": int(sample.mask.sum())}
        fns[name] = jax.jit(lambda key, tokens=tokens: train_controllers(
            model, params, tokens, key, layer, args.steps, cfg, control.lr, control.weight_decay)[1]["nll"])
    seconds = time_interleaved(fns, jax.random.key(2), repeats=args.repeats)
    for name, row in rows.items():
        per_step = seconds[name] / args.steps
        row.update(seconds_per_step=per_step, tokens_per_s=row["tokens_per_step"] / per_step,
                   real_tokens_per_s=row["real_tokens_per_step"] / per_step)
    base, packed = (rows[name]["seconds_per_step"] for name in layouts)
    result = {"machine": platform.machine(), "backend": jax.default_backend(), "cpus": os.cpu_count(),
              "layer": layer, "steps_per_call": args.steps, "repeats": args.repeats, "layouts": rows,
              "packed_speedup": base / packed}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "control_speed.json").write_text(json.dumps(result, indent=2))
    lines = ["| layout | tokens / step (real) | ms / step | real tokens / s |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['tokens_per_step']} ({r['real_tokens_per_step']}) | {1e3 * r['seconds_per_step']:.0f} "
              f"| {r['real_tokens_per_s']:,.0f} |" for name, r in rows.items()]
    lines.append(f"\npacked / one per row: {base / packed:.2f}x faster per step "
                 f"(median of {args.repeats}, calls in turn, {args.steps} steps each)")
    (RESULTS / "control_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in result.items() if k != "layouts"}))


if __name__ == "__main__":
    main()
