"""Small plotting helpers shared by the experiments (PNG via matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402


def plot_curves(path: str | Path, x: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str,
                ylabel: str, title: str, ylim: tuple[float, float] | None = (0.0, 1.0)) -> None:
    """One line per named curve over a shared x axis, saved as a PNG."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, y in curves.items():
        ax.plot(x, y, marker="o", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    if all(float(v).is_integer() for v in x):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(fig, ax, path)


def plot_beta_traces(path: str | Path, traces: dict[str, tuple], title: str) -> None:
    """Switching gates over time against the true subgoal boundaries (one row per method, one
    column per episode). traces: name -> (beta [N, T], mask bool [N, T], boundaries bool [N, T])."""
    import numpy as np

    names = list(traces)
    n_episodes = min(len(traces[name][0]) for name in names)
    fig, axes = plt.subplots(len(names), n_episodes, figsize=(3.2 * n_episodes, 1.9 * len(names)), dpi=120,
                             squeeze=False, sharey=True)
    for row, name in enumerate(names):
        beta, mask, boundaries = (np.asarray(x) for x in traces[name])
        for col in range(n_episodes):
            ax = axes[row, col]
            length = int(mask[col].sum())
            for t in np.flatnonzero(boundaries[col]):
                ax.axvline(t, color="tab:red", linestyle="--", linewidth=1)
            ax.step(np.arange(length), beta[col, :length], where="mid", color="tab:blue")
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlim(-0.5, max(length - 0.5, 0.5))
            if col == 0:
                ax.set_ylabel(f"{name}\nbeta_t", fontsize=8)
            if row == len(names) - 1:
                ax.set_xlabel("step t")
            ax.grid(alpha=0.3)
    fig.suptitle(f"{title} (dashed: true subgoal boundaries)", fontsize=10)
    _finish(fig, None, path)


def plot_rate_distortion(path: str | Path, curves: dict[str, tuple], points: dict[str, tuple] | None = None,
                         title: str = "Rate-distortion over alpha") -> None:
    """Action NLL against KL (nats per step). curves: name -> (kl list, nll list, alpha list),
    drawn as lines annotated with alpha; points: name -> (kl, nll), single markers."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, (kl, nll, alphas) in curves.items():
        line, = ax.plot(kl, nll, marker="o", label=name)
        for x, y, a in zip(kl, nll, alphas):
            ax.annotate(f"{a:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=line.get_color())
    for name, (kl, nll) in (points or {}).items():
        ax.plot([kl], [nll], marker="s", linestyle="none", label=name)
    ax.set_xlabel("KL to the prior (nats per step): rate")
    ax.set_ylabel("action NLL (nats per step): distortion")
    ax.set_title(title)
    _finish(fig, ax, path)


def plot_rl_curves(path: str | Path, curves: dict[str, dict[str, Sequence[float]]], title: str,
                   log_x: bool = False, ylabel: str = "success rate, post-training task") -> None:
    """RL learning curves: per method, the median over runs against episodes with a 25-75%
    band. curves: {method: {"episodes", "median", "q25", "q75"}} (paper Fig. 8 / A5)."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, c in curves.items():
        line, = ax.plot(c["episodes"], c["median"], label=name)
        ax.fill_between(c["episodes"], c["q25"], c["q75"], color=line.get_color(), alpha=0.2, linewidth=0)
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels on the decades only
    ax.set_xlabel("episodes" + (" (log scale)" if log_x else ""))
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    _finish(fig, ax, path)


def _finish(fig, ax, path: str | Path) -> None:
    """Grid and legend on a single-axes figure (ax None: the caller styled its axes), then save."""
    if ax is not None:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
