"""Pretraining stage: train (or resume), evaluate, write results.json and the success curve."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from irl import training
from irl.benchmarking import matmul_peak_flops
from irl.figures import plot_curves
from irl.pretraining import Pretrainer


def pretrain(config, workdir: str | Path, progress: bool = True) -> dict:
    """Train (or resume) and evaluate; returns the results dict also written to results.json."""
    workdir = Path(workdir)
    trainer = Pretrainer(config, str(workdir))  # validates the config before any compute
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json(indent=2))
    evaluate = trainer.evaluate_fn()
    eval_key = jax.random.key(config.seed + 1_000_003)
    state = training.run(
        workdir,
        trainer.init_state,
        trainer.chunk_fn(),
        total_steps=config.train.steps,
        chunk_steps=config.train.chunk_steps,
        evaluate=lambda s: evaluate(s["params"], jax.random.fold_in(eval_key, s["step"])),
        eval_every=config.train.eval_every,
        description="pretrain",
        progress=progress,
    )
    rows = training.read_metrics(workdir)
    final = {k: np.asarray(v) for k, v in jax.device_get(evaluate(state["params"], jax.random.key(config.seed + 2_000_003))).items()}
    train_rows = [r for r in rows if "steps_per_s" in r]
    steps_per_s = float(np.median([r["steps_per_s"] for r in train_rows])) if train_rows else float("nan")
    tokens_per_s = steps_per_s * trainer.tokens_per_step()
    peak = matmul_peak_flops()
    results = {
        "steps": int(state["step"]),
        "train_seconds": float(state["elapsed"]),
        "seeds": config.seeds,
        **{k.removeprefix("eval/"): float(v.mean()) for k, v in final.items()},
        **{k.removeprefix("eval/") + "_by_seed": v.tolist() for k, v in final.items()},
        "tokens_per_s": tokens_per_s,
        "flops_per_token": trainer.flops_per_step() / trainer.tokens_per_step(),
        "matmul_peak_flops": peak,
        "mfu": steps_per_s * trainer.flops_per_step() / peak,
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    evals = [r for r in rows if "eval/success_any_pretrain_task" in r]
    if evals:
        minutes = [r["elapsed_s"] / 60 for r in evals]
        plot_curves(
            workdir / "success_vs_time.png",
            minutes,
            {"any pretraining task": [np.mean(r["eval/success_any_pretrain_task"]) for r in evals],
             "post-training task": [np.mean(r["eval/success_post_task"]) for r in evals],
             **({"held-out action accuracy": [np.mean(r["eval/action_accuracy"]) for r in evals]}
                if "eval/action_accuracy" in evals[0] else {})},
            xlabel="training time (minutes)",
            ylabel="rate",
            title=f"Base model acting alone (sampling), {config.seeds} seed(s)",
        )
    return results
