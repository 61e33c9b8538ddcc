"""Small plotting helpers shared by the experiments (PNG via matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


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
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
