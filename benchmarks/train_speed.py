"""Pretraining step speed: tokens/s and model-FLOP utilisation against this machine's matmul peak.

    python benchmarks/train_speed.py [--repeats 5] [--steps 5] [--torch]

For the `small` grid preset and for the paper's model size (6 layers, width 256, batch 64 x 100
steps, linear embedding of the one-hot observation; on an accelerator also the paper's batch of
1024), times a jitted chunk of `--steps` training steps (fresh expert data included) after a
warm-up call, median of `--repeats`. FLOPs per token are counted analytically
(irl.pretraining.flops_per_token: 3x the forward's matmuls, attention at the row length).
`--torch` times the same model's training step in PyTorch (benchmarks/torch_reference.py) in
the same run, for the unpacked paper-size setups, its calls taken in turn with ours, and
reports our speed as a ratio to it (our model step alone, and our whole step).
Writes benchmarks/results/train_speed[_<backend>].{json,md} (no suffix for the CPU).
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
from irl.benchmarking import matmul_peak_flops, time_call, time_interleaved  # noqa: E402
from irl.pretraining import Pretrainer, flops_per_token  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def setups(accelerator: bool) -> dict:
    small = pretrain_config("small")
    paper_size = pretrain_config("paper")
    paper_size.seeds = 1
    paper_size.data.batch = 64
    packed = paper_size.copy_and_resolve_references()
    packed.data.update(pack_length=100, episodes_per_row=4, max_episode_steps=80)
    rows = {"small preset": small, "paper size, batch 64 x 100": paper_size,
            "paper size, batch 64 x 100, packed": packed}
    if accelerator:
        paper_batch = paper_size.copy_and_resolve_references()
        paper_batch.data.batch = 1024
        rows["paper size, batch 1024 x 100 (the paper's)"] = paper_batch
    return rows


def torch_step(config, steps: int):
    """The PyTorch twin's `steps` training steps of the same model and batch, as a callable;
    None where no twin applies (our packed rows and the agent-relative encoder have none)."""
    if config.data.pack_length or config.model.encoder != "linear" or config.model.arch != "transformer":
        return None
    from benchmarks.torch_reference import make_step

    m = config.model
    return make_step(batch=config.data.batch, length=config.data.max_episode_steps, steps=steps,
                     fused_attention=False, n_layers=m.n_layers, width=m.width, n_heads=m.n_heads,
                     head_dim=m.head_dim, mlp_width=m.mlp_width, n_buckets=m.n_buckets, max_distance=m.max_distance)


def measure(config, steps: int, repeats: int, peak: float, with_torch: bool) -> dict:
    """Our whole step (fresh data included), our model step alone on one fixed batch and, with
    `with_torch`, the PyTorch twin's step: timed in turn (irl.benchmarking.time_interleaved),
    so that their ratios hold on a shared machine."""
    config = config.copy_and_resolve_references()
    config.train.update(chunk_steps=steps, steps=steps * 1000, eval_every=0)
    trainer = Pretrainer(config)
    chunk = trainer.chunk_fn()
    state = trainer.init_state()
    data = jax.jit(trainer.tokens)
    data_seconds = time_call(data, jax.random.key(0), repeats=repeats)
    # the model's steps alone, scanned like the chunk, on one fixed batch (what the PyTorch reference times)
    first_seed = jax.tree.map(lambda x: x[0], (state["params"], state["opt_state"]))
    fixed = data(jax.random.key(2))

    @jax.jit
    def model_chunk(params, opt_state, tokens):
        def body(carry, _):
            params, opt_state, metrics = trainer.update(*carry, tokens)
            return (params, opt_state), metrics["loss"]

        return jax.lax.scan(body, (params, opt_state), length=steps)

    calls = {"whole": lambda: chunk(state)[1]["loss"], "model": lambda: model_chunk(*first_seed, fixed)}
    twin = torch_step(config, steps) if with_torch else None
    if twin is not None:
        calls["torch"] = twin
    seconds = {name: s / steps for name, s in time_interleaved(calls, repeats=repeats).items()}
    real_fraction = float(data(jax.random.key(1)).mask.mean())
    tokens = trainer.tokens_per_step()
    flops = tokens * flops_per_token(trainer.model, trainer.row_length)
    torch_rate = tokens / seconds["torch"] if twin is not None else None
    return {
        "tokens_per_step": tokens,
        "row_length": trainer.row_length,
        "seconds_per_step": seconds["whole"],
        "tokens_per_s": tokens / seconds["whole"],
        "real_token_fraction": real_fraction,
        "real_tokens_per_s": real_fraction * tokens / seconds["whole"],
        "gflop_per_step": flops / 1e9,
        "achieved_gflop_s": flops / seconds["whole"] / 1e9,
        "mfu": flops / seconds["whole"] / peak,
        "data_seconds_per_step": data_seconds,
        "data_fraction": data_seconds / seconds["whole"],
        "model_seconds_per_step": seconds["model"],
        "model_tokens_per_s": tokens / seconds["model"],
        "torch_tokens_per_s": torch_rate,
        "ratio_to_torch": tokens / seconds["model"] / torch_rate if torch_rate else None,
        "whole_step_ratio_to_torch": tokens / seconds["whole"] / torch_rate if torch_rate else None,
    }


def markdown(result: dict) -> str:
    """The results table (also rebuilt from a saved JSON: `markdown(json.load(f))`)."""
    lines = [f"{result['machine']}, jax {result['jax']}"
             + (f", torch {result['torch']}" if "torch" in result else "")
             + f"; matmul peak ({result['matmul_peak_size']}^2 float32, jitted): {result['matmul_peak_gflop_s']:,.0f} GFLOP/s",
             "",
             "| setup | tokens/step | s/step | tokens/s | expert (non-padding) tokens/s | GFLOP/s | MFU | data share "
             "| model step alone, tokens/s | PyTorch, tokens/s | ours / PyTorch (model step) | ours / PyTorch (whole step) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["setups"].items():
        model = f"{r['model_tokens_per_s']:,.0f}" if "model_tokens_per_s" in r else "-"
        torch_rate = r.get("torch_tokens_per_s")
        torch_cells = f"{torch_rate:,.0f}" if torch_rate else "-"
        for key in ("ratio_to_torch", "whole_step_ratio_to_torch"):
            torch_cells += f" | {r[key]:.2f}" if r.get(key) else " | -"
        lines.append(f"| {name} | {r['tokens_per_step']} | {r['seconds_per_step']:.4f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['real_tokens_per_s']:,.0f} | {r['achieved_gflop_s']:,.1f} | {r['mfu']:.0%} | "
                     f"{r['data_fraction']:.0%} | {model} | {torch_cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed call")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch twin of the paper-size step")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args()
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be >= 1")
    backend = jax.default_backend()
    accelerator = backend != "cpu"
    n = 4096 if accelerator else 1024
    peak = matmul_peak_flops(n)
    rows = {}
    for name, config in setups(accelerator).items():
        rows[name] = measure(config, args.steps, args.repeats, peak, args.torch)
    peak = max(peak, matmul_peak_flops.__wrapped__(n))  # measured again after: the machine is shared
    for r in rows.values():
        r["mfu"] = r["achieved_gflop_s"] * 1e9 / peak
    device = jax.devices()[0].device_kind if accelerator else platform.processor() or platform.machine()
    result = {"machine": device, "backend": backend, "cpus": os.cpu_count(), "jax": jax.__version__,
              "matmul_peak_gflop_s": peak / 1e9, "matmul_peak_size": n, "setups": rows}
    if args.torch:
        import torch

        result["torch"] = torch.__version__
    stem = "train_speed" if not accelerator else f"train_speed_{backend}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (args.out / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
