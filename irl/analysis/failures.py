"""Why closed-loop GridPinpad episodes fail: the move that ended each failed episode, classified.

A pinpad episode fails when the agent steps onto a colour that is not the next one of its task
(SPEC.md section 2), so the last move of a failed episode says what went wrong:

- collision_en_route: the move brought the agent closer (Manhattan distance) to the colour it
  had to visit next, and landed on another colour: the way was right, the step was not (the
  model's obstacle avoidance, i.e. executing a subgoal);
- other_subgoal: not heading for the next colour, the agent reached the first colour of another
  subgoal: it pursued another subgoal (steering);
- off_course: any other wrong colour, reached while not heading for the next colour;
- timeout: no wrong colour, the time limit ended the episode.

Fractions are of all episodes, successes included, so the five add up to 1.
"""

from __future__ import annotations

import numpy as np

CAUSES = ("success", "collision_en_route", "other_subgoal", "off_course", "timeout")


def classify(previous_agent: np.ndarray, final_agent: np.ndarray, colors: np.ndarray, task: np.ndarray,
             progress: np.ndarray, success: np.ndarray, length: np.ndarray, time_limit: int,
             colors_per_subgoal: int = 2) -> np.ndarray:
    """Index into CAUSES [N] of each episode, from the agent's cell before and after its last
    move [N, 2], the colours' cells [N, C, 2], the task [N, K] (colours), the colours visited
    [N], success [N] and length [N]. A failure on the very step of the time limit counts as a
    timeout (the rule cannot tell them apart from the length alone; it is rare)."""
    rows = np.arange(len(success))
    next_colour = task[rows, np.minimum(progress, task.shape[1] - 1)]
    target = colors[rows, next_colour]  # [N, 2]
    closer = np.abs(final_agent - target).sum(-1) < np.abs(previous_agent - target).sum(-1)
    on = (colors == final_agent[:, None]).all(-1)  # [N, C]
    landed = np.where(on.any(-1), on.argmax(-1), -1)
    other_first = ((landed >= 0) & (landed % colors_per_subgoal == 0)
                   & (landed // colors_per_subgoal != next_colour // colors_per_subgoal))
    cause = np.where(closer, 1, np.where(other_first, 2, 3))
    cause = np.where(length >= time_limit, 4, cause)
    return np.where(success, 0, cause)


def failure_causes(episodes, time_limit: int, n_subgoals: int, colors_per_subgoal: int = 2) -> dict:
    """{"fractions": {cause: fraction of episodes}, "failed_at_subgoal": [fraction of episodes
    that failed while pursuing subgoal k of the task, k = 0..n_subgoals-1]} from recorded
    GridPinpad episodes (irl/rollout.py with last_states=True or record=True)."""
    final, previous = episodes.final, episodes.previous
    if final is None or previous is None:
        raise ValueError("failure_causes needs the episodes' last states (run with last_states=True)")
    get = lambda x: np.asarray(x)
    success, progress = get(episodes.success), get(final.progress)
    cause = classify(get(previous.agent), get(final.agent), get(final.colors), get(final.task), progress,
                     success, get(episodes.length), time_limit, colors_per_subgoal)
    failed_at = np.minimum(progress // colors_per_subgoal, n_subgoals - 1)
    return {
        "fractions": {name: float(np.mean(cause == i)) for i, name in enumerate(CAUSES)},
        "failed_at_subgoal": [float(np.mean(~success & (failed_at == k))) for k in range(n_subgoals)],
    }
