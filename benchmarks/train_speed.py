"""Pretraining step speed: tokens/s and model-FLOP utilisation against this machine's matmul peak.

    python benchmarks/train_speed.py [--repeats 5] [--steps 5]

For the `small` grid preset and for the paper's model size (6 layers, width 256, batch 64 x 100
steps, linear embedding of the one-hot observation), times a jitted chunk of `--steps` training
steps (fresh expert data included) after a warm-up call, median of `--repeats`. FLOPs per token
are counted analytically (irl.pretraining.flops_per_token: 3x the forward's matmuls,
attention at the row length). Writes benchmarks/results/train_speed.{json,md}.
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

from experiments.configs.grid import pretrain_config  # noqa: E402
from irl.benchmarking import matmul_peak_flops, time_call  # noqa: E402
from irl.pretraining import Pretrainer, flops_per_token  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def setups() -> dict:
    small = pretrain_config("small")
    paper_size = pretrain_config("paper")
    paper_size.seeds = 1
    paper_size.data.batch = 64
    packed = paper_size.copy_and_resolve_references()
    packed.data.update(pack_length=100, episodes_per_row=4, max_episode_steps=80)
    return {"small preset": small, "paper size, batch 64 x 100": paper_size,
            "paper size, batch 64 x 100, packed": packed}


def measure(config, steps: int, repeats: int, peak: float) -> dict:
    config = config.copy_and_resolve_references()
    config.train.update(chunk_steps=steps, steps=steps * 1000, eval_every=0)
    trainer = Pretrainer(config)
    chunk = trainer.chunk_fn()
    state = trainer.init_state()
    seconds = time_call(lambda s: chunk(s)[1]["loss"], state, repeats=repeats) / steps
    data = jax.jit(trainer.tokens)
    data_seconds = time_call(data, jax.random.key(0), repeats=repeats)
    real_fraction = float(data(jax.random.key(1)).mask.mean())
    tokens = trainer.tokens_per_step()
    flops = tokens * flops_per_token(trainer.model, trainer.row_length)
    return {
        "tokens_per_step": tokens,
        "row_length": trainer.row_length,
        "seconds_per_step": seconds,
        "tokens_per_s": tokens / seconds,
        "real_token_fraction": real_fraction,
        "real_tokens_per_s": real_fraction * tokens / seconds,
        "gflop_per_step": flops / 1e9,
        "achieved_gflop_s": flops / seconds / 1e9,
        "mfu": flops / seconds / peak,
        "data_seconds_per_step": data_seconds,
        "data_fraction": data_seconds / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed call")
    args = parser.parse_args()
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be >= 1")
    peak = matmul_peak_flops()
    rows = {name: measure(config, args.steps, args.repeats, peak) for name, config in setups().items()}
    peak = max(peak, matmul_peak_flops.__wrapped__())  # measured again after: the machine is shared
    for r in rows.values():
        r["mfu"] = r["achieved_gflop_s"] * 1e9 / peak
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "jax": jax.__version__, "matmul_peak_gflop_s": peak / 1e9, "setups": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_speed.json").write_text(json.dumps(result, indent=2))
    lines = [f"Matmul peak (1024^2 float32, jitted): {peak / 1e9:.0f} GFLOP/s", "",
             "| setup | tokens/step | s/step | tokens/s | expert (non-padding) tokens/s | GFLOP/s | MFU | data share |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['tokens_per_step']} | {r['seconds_per_step']:.3f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['real_tokens_per_s']:,.0f} | {r['achieved_gflop_s']:.1f} | {r['mfu']:.0%} | {r['data_fraction']:.0%} |")
    (RESULTS / "train_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
