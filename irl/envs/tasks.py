"""Task tables of the pinpad worlds (SPEC.md sections 2 and 3).

A task is a sequence of colours to visit in order. Tables are int32 [n_tasks, MAX_TASK_LEN],
padded with -1, so that pretraining and post-training tables share one shape and switching
between them never recompiles a program.
"""

from __future__ import annotations

import numpy as np

MAX_TASK_LEN = 12

GRID_PRETRAIN_TASKS = (
    "0-1-4-5-0-1", "0-1-4-5-2-3", "0-1-6-7-2-3", "2-3-0-1-4-5",
    "2-3-6-7-2-3", "2-3-6-7-4-5", "4-5-0-1-4-5", "4-5-0-1-6-7",
    "4-5-2-3-6-7", "6-7-2-3-0-1", "6-7-2-3-6-7", "6-7-4-5-0-1",
    "0-1-6-7-4-5", "2-3-0-1-6-7", "4-5-2-3-0-1", "6-7-4-5-2-3",
)
GRID_POST_TASKS = ("0-1-2-3-4-5-6-7-0-1-2-3",)

ANT_PRETRAIN_TASKS = (
    "0-3-2", "1-0-3", "2-1-0", "3-2-1", "0-2-0", "0-2-1", "0-3-1", "1-0-2",
    "1-3-1", "1-3-2", "2-0-2", "2-0-3", "2-1-3", "3-1-0", "3-1-3", "3-2-0",
)
ANT_POST_TASKS = ("0-1-2-3",)


def parse_tasks(tasks: tuple[str, ...] | list[str], n_colors: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse "0-1-4-5" strings into a padded table.

    Returns (table int32 [n_tasks, MAX_TASK_LEN] padded with -1, lengths int32 [n_tasks]).
    Raises ValueError on an empty task, a colour out of range, a task longer than
    MAX_TASK_LEN, or the same colour twice in a row (the second visit could never happen:
    standing still visits nothing, and leaving and re-entering visits the colour once more).
    """
    if len(tasks) == 0:
        raise ValueError("task table is empty")
    table = np.full((len(tasks), MAX_TASK_LEN), -1, np.int32)
    lengths = np.zeros(len(tasks), np.int32)
    for i, task in enumerate(tasks):
        try:
            colours = [int(c) for c in task.split("-")]
        except ValueError as err:
            raise ValueError(f"task {task!r}: expected colours joined by '-', e.g. '0-1-4-5'") from err
        if not 1 <= len(colours) <= MAX_TASK_LEN:
            raise ValueError(f"task {task!r} has {len(colours)} colours; allowed 1..{MAX_TASK_LEN}")
        if any(not 0 <= c < n_colors for c in colours):
            raise ValueError(f"task {task!r} names a colour outside 0..{n_colors - 1}")
        if any(a == b for a, b in zip(colours, colours[1:])):
            raise ValueError(f"task {task!r} repeats a colour immediately")
        table[i, : len(colours)] = colours
        lengths[i] = len(colours)
    return table, lengths
