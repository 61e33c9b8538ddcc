"""Pictures of pinpad states and episodes (RGB arrays and PNG files), drawn on the host.

`render_state(state)` draws one GridPinpad state; `render_episode(obs, length)` draws a whole
episode from its observations alone (the layout is read from the first one, the agent's path
from all), so anything that produces observations, a dataset or a policy rollout, can be looked
at. `render_ant(state, path_xy)` draws AntPinpad's arena from above with the torso's path.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageDraw

from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS, N_COLORS, N_WALLS, GridPinpadState

PALETTE = np.array(
    [
        (230, 25, 75),  # 0 red
        (245, 130, 48),  # 1 orange
        (255, 225, 25),  # 2 yellow
        (60, 180, 75),  # 3 green
        (70, 240, 240),  # 4 cyan
        (0, 130, 200),  # 5 blue
        (145, 30, 180),  # 6 purple
        (240, 50, 230),  # 7 magenta
    ],
    np.uint8,
)
WALL = (80, 80, 80)
FLOOR = (245, 245, 245)
GRIDLINE = (200, 200, 200)
AGENT = (20, 20, 20)
HEADER = 22


def decode_observation(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(agent [2], colors [8, 2], walls [4, 2]) read back from one observation [637]."""
    grid = np.asarray(obs).reshape(GRID_SIZE * GRID_SIZE, N_CHANNELS)
    cells = grid.argmax(axis=0)  # each channel is one-hot over cells
    rc = np.stack([cells // GRID_SIZE, cells % GRID_SIZE], axis=-1)
    return rc[N_COLORS + N_WALLS], rc[:N_COLORS], rc[N_COLORS : N_COLORS + N_WALLS]


def _centre(cell, size):
    return (cell[1] + 0.5) * size, HEADER + (cell[0] + 0.5) * size


def _draw(colors, walls, path, header: str, cell: int, grid_size: int = GRID_SIZE) -> np.ndarray:
    """path: (row, col) per step, fractional for a continuous agent (cell centres at k + 0)."""
    width = grid_size * cell
    image = Image.new("RGB", (width, width + HEADER), FLOOR)
    draw = ImageDraw.Draw(image)
    draw.text((4, 4), header, fill=AGENT)
    for i in range(grid_size + 1):
        draw.line([(i * cell, HEADER), (i * cell, HEADER + width)], fill=GRIDLINE)
        draw.line([(0, HEADER + i * cell), (width, HEADER + i * cell)], fill=GRIDLINE)

    def box(rc, fill, label):
        r, c = int(rc[0]), int(rc[1])
        draw.rectangle([c * cell + 1, HEADER + r * cell + 1, (c + 1) * cell - 1, HEADER + (r + 1) * cell - 1], fill=fill)
        draw.text((c * cell + 3, HEADER + r * cell + 2), label, fill=(0, 0, 0) if fill != WALL else (255, 255, 255))

    for k, rc in enumerate(colors):
        box(rc, tuple(int(v) for v in PALETTE[k]), str(k))
    for k, rc in enumerate(walls):
        box(rc, WALL, f"w{k}")
    points = [_centre(p, cell) for p in path]
    if len(points) > 1:
        for i, (a, b) in enumerate(zip(points[:-1], points[1:])):
            shade = int(200 * i / max(len(points) - 2, 1))
            draw.line([a, b], fill=(shade, shade, 255 - shade), width=3)
    x, y = points[-1]
    radius = cell * 0.28
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=AGENT)
    if len(points) > 1:
        x0, y0 = points[0]
        draw.rectangle([x0 - 4, y0 - 4, x0 + 4, y0 + 4], outline=AGENT, width=2)
    return np.asarray(image)


def _task_header(state, title: str = "") -> str:
    task = [int(c) for c in np.asarray(state.task)[: int(state.task_len)]]
    header = f"task {'-'.join(map(str, task))}  progress {int(state.progress)}  t={int(state.t)}"
    return f"{title}  {header}" if title else header


def render_state(state: GridPinpadState, cell: int = 40) -> np.ndarray:
    """uint8 [H, W, 3] picture of one (unbatched) state, with task and progress on top."""
    header = _task_header(state)
    return _draw(np.asarray(state.colors), np.asarray(state.walls), [np.asarray(state.agent)], header, cell)


def render_episode(obs: np.ndarray, length: int | None = None, title: str = "", cell: int = 40) -> np.ndarray:
    """uint8 [H, W, 3]: the layout of obs[0] and the agent's path over obs[0..length].

    obs: [T+1, 637] observations of one episode; length: steps taken (default: all).
    """
    obs = np.asarray(obs)
    length = obs.shape[0] - 1 if length is None else int(length)
    agent, colors, walls = decode_observation(obs[0])
    path = [agent] + [decode_observation(o)[0] for o in obs[1 : length + 1]]
    header = f"{title}  {length} steps" if title else f"{length} steps"
    return _draw(colors, walls, path, header, cell)


def render_ant(state, path_xy: np.ndarray | None = None, cell: int = 80, title: str = "") -> np.ndarray:
    """uint8 [H, W, 3]: an (unbatched) AntPinpadState's arena from above, the torso's path
    path_xy [T, 2] (metres; default: where the torso is now) and the task on top."""
    from irl.envs.ant_pinpad import CELL, GRID_SIZE as ANT_GRID, HALF

    path_xy = np.asarray(state.physics.qpos[None, :2] if path_xy is None else path_xy)
    path = (path_xy[:, ::-1] + HALF) / CELL - 0.5  # fractional (row, col)
    return _draw(np.asarray(state.colors), np.asarray(state.walls), path, _task_header(state, title), cell, ANT_GRID)


def render_recorded(episodes, i: int, title: str = "") -> np.ndarray:
    """Episode i of a recorded irl.rollout.Episodes (record=True) of either world."""
    obs, length = np.asarray(episodes.obs[i]), int(episodes.length[i])
    if not hasattr(episodes.final, "physics"):  # the grid: everything is in the observations
        return render_episode(obs, length, title=title)
    from irl.envs.ant_pinpad import xy_of_observation

    final = jax.tree.map(lambda x: np.asarray(x)[i], episodes.final)
    return render_ant(final, xy_of_observation(obs[: length + 1]), title=title)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array to a PNG file (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path
