"""AntPinpad: the standard MuJoCo ant, simulated by MJX, visits coloured cells of a 4x4 grid in
a task-specific order (SPEC.md section 3).

The pinpad is bookkeeping on the cell that holds the torso's centre, not geometry: 4 colour
cells and 1 wall cell among 16 cells of CELL metres, centred on the origin. Entering a colour
cell visits it (pinpad.py turns visits into progress, failure or success); entering the wall
cell, leaving the grid, or the torso's height leaving [0.2, 1.0] fails the episode; T = 500
control steps of 0.05 s (5 physics steps of 0.01 s). Pure JAX: `reset` and `step` are jittable
and vmappable functions of (key, state, params), like GridPinpad's.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from flax import struct
from mujoco import mjx

from irl.envs import grid_paths
from irl.envs.grid_pinpad import draw_cells
from irl.envs.pinpad import PinpadParams, initial_candidates, visit_outcome
from irl.envs.tasks import MAX_TASK_LEN

GRID_SIZE = 4
N_COLORS = 4
N_WALLS = 1
CELL = 2.0  # metres
HALF = GRID_SIZE * CELL / 2  # the grid spans [-HALF, HALF) in x and in y
FRAME_SKIP = 5  # physics steps of 0.01 s per control step
CONTROL_DT = FRAME_SKIP * 0.01  # seconds per control step (ant.xml's timestep is 0.01 s)
HEIGHT_RANGE = (0.2, 1.0)
RESET_NOISE = 0.1
MAX_REDRAWS = 64
N_JOINTS = 8
OBS_SIZE = (7 + N_JOINTS - 2) + (6 + N_JOINTS) + 2 + 2 * (N_COLORS + N_WALLS) + 2  # 41


@functools.cache
def ant_model() -> tuple[mujoco.MjModel, Any]:
    """(MjModel, its MJX copy): brax's standard ant (ant.xml) loaded as brax loads it, with the
    bodies that no joint separates fused into one (the same joints, geoms and masses in fewer
    bodies: MJX steps it about 1.15x faster, measured against the unfused model in one run), and
    the MJX solver settings brax uses for it (Newton, one iteration, four line-search steps)."""
    import brax
    from brax.io import mjcf

    path = Path(brax.__file__).parent / "envs" / "assets" / "ant.xml"
    model = mjcf.load_mjmodel(path)
    model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    model.opt.disableflags = model.opt.disableflags | mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    model.opt.iterations = 1
    model.opt.ls_iterations = 4
    return model, mjx.put_model(model)


@struct.dataclass
class AntPinpadState:
    physics: Any  # mjx.Data
    cell: jax.Array  # int32 [2] (row, col) holding the torso's centre
    colors: jax.Array  # int32 [N_COLORS, 2]
    walls: jax.Array  # int32 [N_WALLS, 2]
    task: jax.Array  # int32 [MAX_TASK_LEN], padded with -1
    task_len: jax.Array  # int32 []
    task_id: jax.Array  # int32 []
    progress: jax.Array  # int32 []
    candidates: jax.Array  # bool [n_tasks]
    t: jax.Array  # int32 []


def cell_of(xy: jax.Array) -> jax.Array:
    """int32 [..., 2] (row, col) of the cell holding the point xy [..., 2] (row from y, col from x);
    off the grid where a coordinate falls outside 0..GRID_SIZE-1."""
    return jnp.floor((xy[..., ::-1] + HALF) / CELL).astype(jnp.int32)


def cell_centre(cell: jax.Array) -> jax.Array:
    """float [..., 2] xy of the centre of cell (row, col) [..., 2]."""
    return (cell[..., ::-1].astype(jnp.float32) + 0.5) * CELL - HALF


def symlog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


XY_SLICE = slice(OBS_SIZE - 2 - 2 * (N_COLORS + N_WALLS) - 2, OBS_SIZE - 2 - 2 * (N_COLORS + N_WALLS))


def xy_of_observation(obs: jax.Array) -> jax.Array:
    """[..., 2]: the torso's x, y (metres) read back from observations [..., OBS_SIZE]."""
    return obs[..., XY_SLICE] * HALF


def observation(state: AntPinpadState) -> jax.Array:
    """float32 [41]: symlog(qpos without the torso's x, y; qvel), the torso's x, y scaled to
    [-1, 1], its offsets to each colour cell's and the wall cell's centre scaled by the arena
    size, and its position inside its cell (in cells, -0.5..0.5; state.cell is the torso's cell,
    kept by reset and step). No task, no progress."""
    qpos, qvel = state.physics.qpos, state.physics.qvel
    xy = qpos[:2]
    targets = cell_centre(jnp.concatenate([state.colors, state.walls]))  # [5, 2]
    return jnp.concatenate([
        symlog(qpos[2:]), symlog(qvel), xy / HALF, ((targets - xy) / (2 * HALF)).ravel(),
        (xy - cell_centre(state.cell)) / CELL,
    ])


def solvable(start, colors, walls, task, task_len) -> jax.Array:
    """bool []: can every leg of the task be walked on the grid (4-neighbour moves, never
    through the wall or a colour other than the leg's target)?"""
    ends = jnp.concatenate([colors, start[None]])  # the start is index N_COLORS
    blocked = grid_paths.cells_mask(jnp.concatenate([colors, walls]), GRID_SIZE)
    legs = jnp.arange(MAX_TASK_LEN)
    source = jnp.where(legs == 0, N_COLORS, jnp.maximum(jnp.roll(task, 1), 0))
    target = ends[jnp.maximum(task, 0)]

    def reachable(src, dst):
        return grid_paths.distance_field(dst, blocked)[src[0], src[1]] < grid_paths.UNREACHABLE

    ok = jax.vmap(reachable)(ends[source], target)
    return jnp.all(ok | (legs >= task_len))


class AntPinpad:
    """The AntPinpad world. Stateless: every method is a pure function of its arguments."""

    grid_size = GRID_SIZE
    n_colors = N_COLORS
    n_walls = N_WALLS
    obs_size = OBS_SIZE
    action_size = N_JOINTS
    colors_per_subgoal = 1  # a subgoal is one colour

    @staticmethod
    def current_subgoal(state: AntPinpadState) -> jax.Array:
        return current_subgoal(state)

    def __init__(self):
        self.mj_model, self.model = ant_model()  # built here, outside any jit trace

    def _layout(self, key, params: PinpadParams):
        task_key, layout_key = jax.random.split(key)
        task_id = (jax.random.bits(task_key) % jnp.uint32(params.tasks.shape[0])).astype(jnp.int32)
        task, task_len = params.tasks[task_id], params.task_lens[task_id]

        def draw(attempt):
            bits = jax.random.bits(jax.random.fold_in(layout_key, attempt), (N_COLORS + N_WALLS + 1,), jnp.uint32)
            cells = draw_cells(bits, GRID_SIZE**2)
            rc = jnp.stack([cells // GRID_SIZE, cells % GRID_SIZE], axis=-1)
            colors, walls, start = rc[:N_COLORS], rc[N_COLORS:N_COLORS + N_WALLS], rc[-1]
            return colors, walls, start, solvable(start, colors, walls, task, task_len)

        def redraw(carry):
            return (carry[0] + 1, *draw(carry[0]))

        _, colors, walls, start, _ = jax.lax.while_loop(
            lambda c: ~c[4] & (c[0] < MAX_REDRAWS), redraw, (jnp.int32(1), *draw(0)))
        return task_id, task, task_len, colors, walls, start

    def reset(self, key: jax.Array, params: PinpadParams) -> tuple[jax.Array, AntPinpadState]:
        """A task drawn from the table, a layout it can be walked on, the torso at a uniform
        point of the start cell with a random yaw, joints and velocities uniform in +-0.1."""
        layout_key, xy_key, yaw_key, joint_key, vel_key = jax.random.split(key, 5)
        task_id, task, task_len, colors, walls, start = self._layout(layout_key, params)
        model = self.model
        xy = cell_centre(start) + jax.random.uniform(xy_key, (2,), minval=-0.5, maxval=0.5) * CELL
        yaw = jax.random.uniform(yaw_key, (), minval=-jnp.pi, maxval=jnp.pi)
        qpos0 = jnp.asarray(self.mj_model.numeric("init_qpos").data, jnp.float32)  # standing, z 0.55
        joints = qpos0[7:] + jax.random.uniform(joint_key, (N_JOINTS,), minval=-RESET_NOISE, maxval=RESET_NOISE)
        qpos = jnp.concatenate([xy, qpos0[2:3], jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)]), joints])
        qvel = jax.random.uniform(vel_key, (model.nv,), minval=-RESET_NOISE, maxval=RESET_NOISE)
        physics = mjx.forward(model, mjx.make_data(model).replace(qpos=qpos, qvel=qvel))
        state = AntPinpadState(
            physics=physics, cell=cell_of(xy), colors=colors, walls=walls, task=task, task_len=task_len,
            task_id=task_id, progress=jnp.int32(0), candidates=initial_candidates(task_id, params), t=jnp.int32(0),
        )
        return observation(state), state

    def step(self, key: jax.Array, state: AntPinpadState, action: jax.Array, params: PinpadParams):
        """Torques action [8] in [-1, 1] (clipped) for FRAME_SKIP physics steps; then the pinpad
        rules on the torso's new cell. Returns (obs [41], state, reward, done, info), info
        holding `success`, `failure`, `truncated`, `subgoal` (the next colour) and `progress`."""
        del key  # the physics is deterministic
        model = self.model
        physics = state.physics.replace(ctrl=jnp.clip(action, -1.0, 1.0))
        physics = jax.lax.fori_loop(0, FRAME_SKIP, lambda _, d: mjx.step(model, d), physics)
        return self.move_to(state.replace(physics=physics), params)

    def move_to(self, state: AntPinpadState, params: PinpadParams):
        """The pinpad rules for a state whose physics has just moved (step's second half; also
        what tests drive with scripted torso positions)."""
        cell = cell_of(state.physics.qpos[:2])
        off_grid, in_wall, fallen = out_of_bounds(state)
        on_color = jnp.all(state.colors == cell, axis=-1)
        visit = jnp.any(cell != state.cell) & jnp.any(on_color) & ~off_grid
        progress, candidates, success, wrong_visit = visit_outcome(
            state.progress, state.candidates, visit, jnp.argmax(on_color), params)
        failure = (wrong_visit | off_grid | in_wall | fallen) & ~success
        t = state.t + 1
        truncated = (t >= params.time_limit) & ~success & ~failure
        state = state.replace(cell=cell, progress=progress, candidates=candidates, t=t)
        info = {"success": success, "failure": failure, "truncated": truncated,
                "subgoal": current_subgoal(state), "progress": progress}
        return observation(state), state, success.astype(jnp.float32), success | failure | truncated, info


def out_of_bounds(state: AntPinpadState) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(off the grid, in the wall cell, fallen): the failures that need no visit, from the
    torso's position and height."""
    qpos = state.physics.qpos
    cell = cell_of(qpos[:2])
    off_grid = jnp.any((cell < 0) | (cell >= GRID_SIZE))
    in_wall = jnp.any(jnp.all(state.walls == cell, axis=-1))
    fallen = (qpos[2] < HEIGHT_RANGE[0]) | (qpos[2] > HEIGHT_RANGE[1])
    return off_grid, in_wall, fallen


def current_subgoal(state: AntPinpadState) -> jax.Array:
    """The colour being sought (on the ant a subgoal is one colour)."""
    return state.task[jnp.minimum(state.progress, state.task_len - 1)]
