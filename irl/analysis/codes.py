"""What a metacontroller's code holds: read it out after each true subgoal boundary.

For every subgoal segment of held-out expert episodes, take the code z `tolerance` steps after
the segment starts (a switch up to that many steps off the boundary counts as on it:
segmentation.py; the grid's tolerance is 1, the ant's 5) and ask how well it tells (a) the
segment's subgoal, (b) the expert's first action in the segment and (c) the cell of the
segment's first colour (grid only: discrete moves and cells).
(a) and (b) are nearest-centroid classifiers fitted on the segments of half the episodes and
scored on those of the other half, so that no episode is on both sides (its segments share a
layout, a history and the code's drift); `chance` is the most frequent label's share of the
scored half. (c) is a linear (ridge) regression, fitted and scored the same way, as the share
of the cells' variance it explains (r2: one minus the scored half's mean squared error over
its variance). A code that names the subgoal ("go to colour pair B") reads out (a); one that
names a heading reads out (b); one that names a place on the board reads out (c), which
changes with the layout, so a policy over such codes must read the layout.

Host-side numpy, once per evaluation.
"""

from __future__ import annotations

import numpy as np


def segment_codes(z: np.ndarray, mask: np.ndarray, subgoal: np.ndarray, actions: np.ndarray | None = None,
                  delay: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(codes [S, Z], subgoal [S], first action [S] or None, episode [S]) of every segment of
    z [B, T, Z], read `delay` steps after it starts (at the episode's last step if it is
    shorter); `episode` is the row of z the segment comes from."""
    z, mask, subgoal = np.asarray(z), np.asarray(mask, bool), np.asarray(subgoal)
    starts = mask.copy()
    starts[:, 1:] &= subgoal[:, 1:] != subgoal[:, :-1]
    rows, t = np.nonzero(starts)
    last = mask.sum(1) - 1
    read_at = np.minimum(t + delay, last[rows])
    first_action = None if actions is None else np.asarray(actions)[rows, t]
    return z[rows, read_at], subgoal[rows, t], first_action, rows


def fit_and_score_rows(n: int, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, score) over n rows: rows whose group (default: the row itself) is
    even are fitted on, the others scored, so that no group is on both sides."""
    fit = (np.arange(n) if groups is None else np.asarray(groups)) % 2 == 0
    return fit, ~fit


def nearest_centroid_accuracy(x: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, float]:
    """{"accuracy", "chance"}: centroids from the rows of even groups, scored on the others
    (fit_and_score_rows)."""
    fit, score = fit_and_score_rows(len(x), groups)
    classes = np.unique(labels[fit])
    if len(classes) == 0 or not score.any():
        return {"accuracy": float("nan"), "chance": float("nan")}
    centroids = np.stack([x[fit & (labels == c)].mean(0) for c in classes])
    predicted = classes[((x[score][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
    _, counts = np.unique(labels[score], return_counts=True)
    return {"accuracy": float(np.mean(predicted == labels[score])), "chance": float(counts.max() / score.sum())}


def linear_r2(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, ridge: float = 1e-2) -> dict[str, float]:
    """{"r2"}: the share of y's variance [N, K] that a ridge regression on x [N, Z] (with a
    bias) explains, fitted on the rows of even groups and scored on the others
    (fit_and_score_rows)."""
    fit, score = fit_and_score_rows(len(x), groups)
    if fit.sum() < 2 or not score.any():
        return {"r2": float("nan")}
    features = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    a = features[fit]
    weights = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y[fit])
    squared_error = ((y[score] - features[score] @ weights) ** 2).mean(0)
    return {"r2": float(1 - squared_error.sum() / max(y[score].var(0).sum(), 1e-12))}


def grid_target_cells(obs: np.ndarray, subgoal: np.ndarray, grid_size: int, channels: int,
                      colors_per_subgoal: int) -> np.ndarray:
    """(row, col) [B, T, 2] of the first colour of the subgoal pursued at each step, read off the
    grid's one-hot observations [B, T, G*G*C] (channel c < 8: colour c)."""
    cells = np.asarray(obs).reshape(*np.shape(subgoal), grid_size * grid_size, channels)
    color = np.asarray(subgoal) * colors_per_subgoal
    flat = np.take_along_axis(cells, color[..., None, None], axis=-1)[..., 0].argmax(-1)
    return np.stack(np.divmod(flat, grid_size), axis=-1).astype(np.float64)


def code_readout(z: np.ndarray, mask: np.ndarray, subgoal: np.ndarray, actions: np.ndarray | None = None,
                 target_cells: np.ndarray | None = None, tolerance: int = 1) -> dict:
    """{"subgoal": {"accuracy", "chance"}, "first_action": {...} (when actions are discrete),
    "target_cell": {"r2"} (when target_cells [B, T, 2] are given: grid_target_cells)}, each
    segment's code read `tolerance` steps after it starts (the switch's matching tolerance)."""
    discrete = actions is not None and np.issubdtype(np.asarray(actions).dtype, np.integer)
    codes, segment_subgoal, first_action, episode = segment_codes(z, mask, subgoal, actions if discrete else None,
                                                                  delay=tolerance)
    out = {"subgoal": nearest_centroid_accuracy(codes, segment_subgoal, episode)}
    if discrete:
        out["first_action"] = nearest_centroid_accuracy(codes, first_action, episode)
    if target_cells is not None:
        cells = segment_codes(target_cells, mask, subgoal, delay=0)[0]
        out["target_cell"] = linear_r2(codes, cells, episode)
    return out


def subgoal_chain(progress: np.ndarray, n_subgoals: int, colors_per_subgoal: int) -> dict:
    """How far episodes get, subgoal by subgoal, from the task colours each visited [N]:
    "reached" [k-1] = share of episodes that completed at least k subgoals, and
    "given_previous" [k-1] = reached[k-1] / reached[k-2] (k = 1: reached[0]; None where no
    episode got that far), the chance of the k-th subgoal once k-1 are done."""
    done = np.asarray(progress) // colors_per_subgoal
    reached = [float((done >= k).mean()) for k in range(1, n_subgoals + 1)]
    before = [1.0] + reached[:-1]
    given = [r / b if b > 0 else None for r, b in zip(reached, before)]
    return {"reached": reached, "given_previous": given}
