"""How well a switching gate beta_t segments expert episodes into their true subgoals.

A *switch* is a step t >= 1 with beta_t >= 0.5 (the forced beta at t = 0 is not a decision).
A *true boundary* is a step t >= 1 at which the subgoal being pursued changes: the first step
acted after the last colour of a subgoal was visited, i.e. where progress // colors_per_subgoal
changes (progress counts the task colours visited before acting at t; a subgoal is two colours
on the grid, one on the ant).
Switches are matched one-to-one to boundaries within +-tolerance steps; precision, recall and
F1 are pooled over all episodes (micro-averaged).

Counting convention: `switches_per_episode` and `subgoals_per_episode` both include the start
(the code chosen at t = 0, the first subgoal), so a perfect segmentation makes them equal
(3 for the pretraining tasks). `mean_beta` averages every real step, the forced beta_0 = 1
included, as the gate's mean value over an episode.

Host-side numpy: these run once per evaluation on a few hundred episodes, not in training.
"""

from __future__ import annotations

import numpy as np

from irl.control.metacontroller import SWITCH_THRESHOLD


def switch_points(beta: np.ndarray, mask: np.ndarray, threshold: float = SWITCH_THRESHOLD) -> np.ndarray:
    """bool [B, T]: real steps t >= 1 with beta_t >= threshold."""
    beta, mask = np.asarray(beta), np.asarray(mask, bool)
    switches = (beta >= threshold) & mask
    switches[:, 0] = False
    return switches


def true_boundaries(progress: np.ndarray, mask: np.ndarray, colors_per_subgoal: int = 2) -> np.ndarray:
    """bool [B, T]: real steps t >= 1 where the subgoal index progress // colors_per_subgoal changes."""
    segment = np.asarray(progress) // colors_per_subgoal
    mask = np.asarray(mask, bool)
    boundaries = np.zeros(segment.shape, bool)
    boundaries[:, 1:] = (segment[:, 1:] != segment[:, :-1]) & mask[:, 1:]
    return boundaries


def count_matches(predicted: np.ndarray, true: np.ndarray, tolerance: int = 1) -> int:
    """Size of a maximum one-to-one matching between the True steps of two bool [T] arrays,
    pairs at most `tolerance` steps apart. Greedy in time order (each true event takes the
    earliest free prediction in its window) is optimal for windows of equal width on a line."""
    free = list(np.flatnonzero(predicted))
    matched = 0
    for t in np.flatnonzero(true):
        for i, p in enumerate(free):
            if abs(p - t) <= tolerance:
                del free[i]
                matched += 1
                break
            if p > t + tolerance:
                break
    return matched


def precision_recall_f1(n_matched: int, n_predicted: int, n_true: int) -> tuple[float, float, float]:
    """With nothing predicted and nothing to find, the segmentation is perfect (1, 1, 1)."""
    precision = n_matched / n_predicted if n_predicted else float(n_true == 0)
    recall = n_matched / n_true if n_true else float(n_predicted == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def binary_fraction(beta: np.ndarray, mask: np.ndarray, low: float = 0.1, high: float = 0.9) -> float:
    """Fraction of real steps t >= 1 (t = 0 is forced) with beta_t < low or beta_t > high."""
    beta, real = np.asarray(beta), np.asarray(mask, bool).copy()
    real[:, 0] = False
    values = beta[real]
    return float(np.mean((values < low) | (values > high))) if values.size else float("nan")


def segmentation_scores(beta: np.ndarray, mask: np.ndarray, progress: np.ndarray, tolerance: int = 1,
                        colors_per_subgoal: int = 2, threshold: float = SWITCH_THRESHOLD) -> dict[str, float]:
    """beta [B, T] in [0, 1], mask bool [B, T], progress int [B, T] -> the measures above."""
    mask = np.asarray(mask, bool)
    predicted, true = switch_points(beta, mask, threshold), true_boundaries(progress, mask, colors_per_subgoal)
    matched = sum(count_matches(p, t, tolerance) for p, t in zip(predicted, true))
    precision, recall, f1 = precision_recall_f1(matched, int(predicted.sum()), int(true.sum()))
    episodes = max(len(mask), 1)
    has_start = mask[:, 0]
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "binary_fraction": binary_fraction(beta, mask),
        "switches_per_episode": float((predicted.sum() + has_start.sum()) / episodes),
        "subgoals_per_episode": float((true.sum() + has_start.sum()) / episodes),
        "mean_beta": float(np.mean(np.asarray(beta)[mask])) if mask.any() else float("nan"),
    }
