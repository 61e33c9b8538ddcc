"""MuJoCo-rendered frames of AntPinpad: the ant's own geoms, lit and shaded by MuJoCo's OpenGL
renderer, with the pinpad's cells laid on the floor as flat tiles (the colours of
irl.envs.render.PALETTE, the wall cell dark grey) and the grid's lines between them.

    with FrameRenderer() as frames:
        image = frames.render(state)  # uint8 [height, width, 3] of one (unbatched) AntPinpadState

Rendering needs an OpenGL context without a window. The backend is MUJOCO_GL's when it names
`egl` or `osmesa`, else `egl`; Mesa's EGL renders in software, so no GPU is needed. Where no
context can be made, FrameRenderer raises RenderingUnavailable with the cause; the top-down
drawing, irl.envs.render.render_ant, works everywhere.
"""

from __future__ import annotations

import copy
import os

import mujoco
import numpy as np

from irl.envs.ant_pinpad import CELL, GRID_SIZE, HALF, ant_model, cell_centre
from irl.envs.render import PALETTE, WALL

TILE_HEIGHT = 0.002  # metres above the floor: the tiles must not flicker against it
LINE_WIDTH = 0.03  # metres
LINE_RGBA = (0.3, 0.3, 0.3, 1.0)
LIGHT_AMBIENT = 0.35  # with the overhead light's 0.65, a surface facing up shows its colour
FLOOR_RGBA = (0.93, 0.93, 0.93, 1.0)
PATH_DOT = 0.06  # metres: the radius of the path's dots
MAX_PATH_DOTS = 150
MAX_EXTRA_GEOMS = GRID_SIZE * GRID_SIZE + 2 * (GRID_SIZE + 1) + MAX_PATH_DOTS


class RenderingUnavailable(RuntimeError):
    """No OpenGL context could be made for MuJoCo's renderer."""


def _gl_context(width: int, height: int):
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    try:
        if backend == "osmesa":
            from mujoco.osmesa import GLContext
        else:
            backend = "egl"
            from mujoco.egl import GLContext
        context = GLContext(width, height)
        context.make_current()
    except Exception as error:  # a missing library, display or driver: each raises its own type
        raise RenderingUnavailable(f"MuJoCo could not make an OpenGL context with {backend}: {error!r}") from error
    return context


class FrameRenderer:
    """Renders AntPinpad states from a fixed camera above the arena, looking down at `elevation`
    degrees along +y: row 0 of the grid is nearest, at the bottom of the frame, and columns grow
    to the right (the top-down drawing, render_ant, puts row 0 at the top). One OpenGL context
    per renderer: close() it (or use it as a context manager)."""

    def __init__(self, width: int = 480, height: int = 360, elevation: float = -55.0, distance: float = 13.0):
        self.width, self.height = width, height
        model = copy.deepcopy(ant_model()[0])  # the lights and buffer below are this renderer's
        # the headlight's ambient and the overhead light's diffuse sum to 1, so a tile facing up
        # shows its colour exactly (ant.xml's light and the default headlight brighten it 1.43x)
        model.vis.headlight.ambient[:] = LIGHT_AMBIENT
        model.vis.headlight.diffuse[:] = 0.0
        model.vis.headlight.specular[:] = 0.0
        model.light_diffuse[:] = 1.0 - LIGHT_AMBIENT
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.model = model
        self.data = mujoco.MjData(model)
        self._floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._context = _gl_context(width, height)
        self._scene = mujoco.MjvScene(model, maxgeom=2 * model.ngeom + MAX_EXTRA_GEOMS)  # with room for decor
        self._render_context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._render_context)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._camera.lookat[:] = (0.0, -0.6, 0.0)
        self._camera.distance = distance
        self._camera.elevation = elevation
        self._camera.azimuth = 90.0  # looking along +y: rows grow away from the camera

    def render(self, state, path_xy: np.ndarray | None = None) -> np.ndarray:
        """uint8 [height, width, 3]: the (unbatched) AntPinpadState's ant and layout, and the
        torso's path path_xy [T, 2] (metres) as dots on the floor, blue to yellow, when given."""
        if self._context is None:
            raise RuntimeError("this FrameRenderer is closed")
        self._context.make_current()
        self.data.qpos[:] = np.asarray(state.physics.qpos)
        self.data.qvel[:] = np.asarray(state.physics.qvel)
        mujoco.mj_forward(self.model, self.data)
        mujoco.mjv_updateScene(self.model, self.data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        self._plain_floor()
        self._add_layout(np.asarray(state.colors), np.asarray(state.walls))
        if path_xy is not None:
            self._add_path(np.asarray(path_xy, np.float64))
        viewport = mujoco.MjrRect(0, 0, self.width, self.height)
        mujoco.mjr_render(viewport, self._scene, self._render_context)
        pixels = np.empty((self.height, self.width, 3), np.uint8)
        mujoco.mjr_readPixels(pixels, None, viewport, self._render_context)
        return np.flipud(pixels).copy()  # OpenGL's rows run bottom-up

    def _plain_floor(self) -> None:
        """The floor without ant.xml's checker texture, which drowns the cells."""
        for i in range(self._scene.ngeom):
            geom = self._scene.geoms[i]
            if geom.objtype == mujoco.mjtObj.mjOBJ_GEOM and geom.objid == self._floor:
                geom.matid = -1
                geom.reflectance = 0.0
                geom.rgba[:] = FLOOR_RGBA

    def _add_layout(self, colors: np.ndarray, walls: np.ndarray) -> None:
        tiles = [(cell, (*PALETTE[k] / 255.0, 1.0)) for k, cell in enumerate(colors)]
        tiles += [(cell, (*np.asarray(WALL) / 255.0, 1.0)) for cell in walls]
        for cell, rgba in tiles:
            x, y = np.asarray(cell_centre(np.asarray(cell)))
            self._add_box((x, y), (CELL / 2 - LINE_WIDTH, CELL / 2 - LINE_WIDTH), rgba)
        for i in range(GRID_SIZE + 1):
            offset = -HALF + i * CELL
            self._add_box((offset, 0.0), (LINE_WIDTH / 2, HALF), LINE_RGBA)
            self._add_box((0.0, offset), (HALF, LINE_WIDTH / 2), LINE_RGBA)

    def _add_path(self, path_xy: np.ndarray) -> None:
        points = path_xy[np.linspace(0, len(path_xy) - 1, min(len(path_xy), MAX_PATH_DOTS)).astype(int)]
        for i, xy in enumerate(points):
            shade = i / max(len(points) - 1, 1)
            self._add_geom(mujoco.mjtGeom.mjGEOM_SPHERE, (PATH_DOT, PATH_DOT, PATH_DOT), xy, (shade, shade, 1 - shade, 1.0))

    def _add_box(self, xy, half_size, rgba) -> None:
        self._add_geom(mujoco.mjtGeom.mjGEOM_BOX, (*half_size, TILE_HEIGHT), xy, rgba)

    def _add_geom(self, kind, size, xy, rgba) -> None:
        if self._scene.ngeom >= self._scene.maxgeom:
            raise RuntimeError("the scene has no room for the layout and the path")
        geom = self._scene.geoms[self._scene.ngeom]
        mujoco.mjv_initGeom(geom, kind, np.asarray(size, np.float64), np.array([*xy, TILE_HEIGHT]),
                            np.eye(3).reshape(-1), np.asarray(rgba, np.float32))
        self._scene.ngeom += 1

    def close(self) -> None:
        if self._context is not None:
            self._render_context.free()
            self._context.free()
            self._context = None

    def __enter__(self) -> "FrameRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
