"""The generic training loop every stage uses: scanned chunks, checkpoints, logs, progress.

A stage provides a pure `chunk(state) -> (state, metrics)` that runs `chunk_steps` optimiser
steps inside one jitted `lax.scan` (seeds are a batch axis inside it). This module owns what
happens between chunks:

- orbax checkpoints of the whole state (params, optimiser state, keys, step, elapsed time):
  re-running the same command restores the latest one and continues. Because every random
  draw is keyed by (seed key, step), a resumed run gives exactly the numbers of an
  uninterrupted one;
- a non-finite loss stops training with a clear error *before* anything is saved, so the last
  good checkpoint stays intact;
- metrics as JSON lines (`metrics.jsonl`) and TensorBoard event files, a tqdm progress bar
  with the loss and steps/s, and an optional evaluation callback every `eval_every` steps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

Metrics = dict[str, Any]


class MetricsLog:
    """Append-only JSON lines plus TensorBoard scalars (seed-averaged) in `workdir`."""

    def __init__(self, workdir: Path):
        from tensorboardX import SummaryWriter

        self.path = workdir / "metrics.jsonl"
        self.writer = SummaryWriter(str(workdir / "tensorboard"))

    def write(self, step: int, metrics: Metrics) -> None:
        row = {"step": int(step), **{k: _jsonable(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for name, value in metrics.items():
            if np.ndim(value) <= 1 and np.size(value) > 0 and np.issubdtype(np.asarray(value).dtype, np.number):
                self.writer.add_scalar(name, float(np.mean(value)), int(step))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _jsonable(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


def read_metrics(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(
    workdir: str | Path,
    init_state: Callable[[], dict],
    chunk: Callable[[dict], tuple[dict, Metrics]],
    total_steps: int,
    chunk_steps: int,
    evaluate: Callable[[dict], Metrics] | None = None,
    eval_every: int = 0,
    keep_checkpoints: int = 2,
    description: str = "train",
    progress: bool = True,
) -> dict:
    """Train until state["step"] == total_steps, resuming from `workdir` when it holds a
    checkpoint. `state` is a pytree with an int "step" and a float "elapsed" (training
    seconds, carried across resumes); `chunk` advances it by `chunk_steps` and returns
    per-step metrics with leading axes [chunk_steps, ...] (must include "loss").
    Returns the final state."""
    if total_steps % chunk_steps:
        raise ValueError(f"total_steps {total_steps} must be a multiple of chunk_steps {chunk_steps}")
    if eval_every and eval_every % chunk_steps:
        raise ValueError(f"eval_every {eval_every} must be a multiple of chunk_steps {chunk_steps}")
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    manager = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_checkpoints, enable_async_checkpointing=False),
    )
    state = init_state()
    latest = manager.latest_step()
    if latest is not None:
        state = manager.restore(latest, args=ocp.args.StandardRestore(state))
    log = MetricsLog(workdir)
    step = int(state["step"])
    if step == 0 and evaluate and eval_every:
        log.write(0, {"elapsed_s": 0.0, **evaluate(state)})
    bar = tqdm(total=total_steps, initial=step, desc=description, disable=not progress, dynamic_ncols=True)
    try:
        while step < total_steps:
            start = time.perf_counter()
            new_state, metrics = chunk(state)
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - start
            loss = np.asarray(metrics["loss"])
            if not np.all(np.isfinite(loss)):
                bad = np.argwhere(~np.isfinite(loss))[0]
                raise FloatingPointError(
                    f"{description}: non-finite loss at step {step + int(bad[0]) + 1}"
                    + (f" (seed {int(bad[1])})" if loss.ndim > 1 else "")
                    + f"; stopped without saving, the last good checkpoint (step {manager.latest_step()}) is intact"
                )
            state = dict(new_state, elapsed=new_state["elapsed"] + seconds)
            step = int(state["step"])
            manager.save(step, args=ocp.args.StandardSave(state))
            summary = {k: np.mean(v, axis=0) for k, v in metrics.items()}  # chunk mean, per seed
            summary["steps_per_s"] = chunk_steps / seconds
            summary["elapsed_s"] = float(state["elapsed"])
            if evaluate and eval_every and step % eval_every == 0:
                summary.update(evaluate(state))
            log.write(step, summary)
            bar.update(chunk_steps)
            bar.set_postfix(loss=f"{float(np.mean(summary['loss'])):.4f}", steps_s=f"{summary['steps_per_s']:.2f}")
    finally:
        bar.close()
        log.close()
        manager.wait_until_finished()
        manager.close()
    return state


def restore_latest(workdir: str | Path, target: dict) -> dict:
    """The latest checkpoint in `workdir`, restored into the structure of `target`."""
    manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints")
    try:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: run that stage first")
        return manager.restore(step, args=ocp.args.StandardRestore(target))
    finally:
        manager.close()
