"""MuJoCo-rendered frames of AntPinpad: the layout's tiles land on their cells, the ant is drawn
where its torso is, the path is drawn, and a machine without OpenGL gets a clear error."""

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import irl.envs as envs
from irl.envs.ant_frame import FrameRenderer, RenderingUnavailable
from irl.envs.ant_pinpad import cell_centre
from irl.envs.render import PALETTE, WALL

WIDTH, HEIGHT = 320, 240


def renderer_or_skip(width: int, height: int) -> FrameRenderer:
    try:
        return FrameRenderer(width, height)
    except RenderingUnavailable as error:  # the rest of the suite does not need OpenGL
        pytest.skip(f"no OpenGL context on this machine: {error}")


@pytest.fixture(scope="module")
def frames():
    renderer = renderer_or_skip(WIDTH, HEIGHT)
    yield renderer
    renderer.close()


@pytest.fixture(scope="module")
def state():
    world, params = envs.make("ant_pinpad")
    return jax.jit(world.reset)(jax.random.key(3), params)[1]


def pixels_of(image: np.ndarray, rgb, tolerance: float = 40.0) -> np.ndarray:
    """(row, col) of the pixels within `tolerance` of the colour rgb."""
    return np.argwhere(np.linalg.norm(image.astype(float) - np.asarray(rgb, float), axis=-1) < tolerance)


# colour 0 at (1, 1), the others and the wall out of its way; (1, 2) and (2, 1) are free
LAYOUT = np.array([(1, 1), (3, 3), (3, 2), (0, 3)])
WALLS = np.array([(0, 0)])


def arranged(state, colour0=(1, 1), torso_xy=(100.0, 100.0)):
    """state with colour 0 at colour0, the rest of LAYOUT, and the torso at torso_xy (default:
    far off the arena, out of the frame)."""
    colors = LAYOUT.copy()
    colors[0] = colour0
    qpos = state.physics.qpos.at[:2].set(jnp.asarray(torso_xy, jnp.float32))
    return state.replace(colors=jnp.asarray(colors, jnp.int32), walls=jnp.asarray(WALLS, jnp.int32),
                         physics=state.physics.replace(qpos=qpos))


def centre_of_colour0(frames, state, cell) -> np.ndarray:
    return pixels_of(frames.render(arranged(state, colour0=cell)), PALETTE[0]).mean(0)


def test_frame_shows_every_colour_on_its_cell(frames, state):
    image = frames.render(state)
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    for k in range(4):
        assert len(pixels_of(image, PALETTE[k])) > 300, f"colour {k}'s tile is missing"
    assert len(pixels_of(image, WALL, 25)) > 300, "the wall's tile is missing"
    # one column right lands further right in the frame; one row further, higher up
    start = centre_of_colour0(frames, state, (1, 1))
    right, further = centre_of_colour0(frames, state, (1, 2)), centre_of_colour0(frames, state, (2, 1))
    assert right[1] - start[1] > 20 and abs(right[0] - start[0]) < 5
    assert start[0] - further[0] > 20


def test_frame_draws_the_ant_where_its_torso_is(frames, state):
    cell = (1, 2)
    here = frames.render(arranged(state, torso_xy=cell_centre(jnp.asarray(cell))))
    gone = frames.render(arranged(state))
    ant = np.argwhere(np.abs(here.astype(int) - gone.astype(int)).sum(-1) > 60)
    assert len(ant) > 50  # its body and legs
    # its pixels sit on the cell's tile
    assert np.linalg.norm(ant.mean(0) - centre_of_colour0(frames, state, cell)) < 25


def test_path_is_drawn_from_blue_to_yellow(frames, state):
    state = arranged(state)  # the ant out of the frame
    centre = np.asarray(cell_centre(jnp.asarray((1, 2))))
    path = centre + np.linspace(-0.8, 0.8, 40)[:, None] * np.array([1.0, 0.0])  # left to right
    without, image = frames.render(state), frames.render(state, path)
    dots = np.where((image != without).any(-1, keepdims=True), image, 0)  # yellow 2's tile is not a dot
    first, last = pixels_of(dots, (0, 0, 255), 60), pixels_of(dots, (255, 255, 0), 60)
    assert len(first) > 2 and len(last) > 2
    assert last[:, 1].mean() - first[:, 1].mean() > 20


def test_no_opengl_is_a_clear_error(monkeypatch):
    broken = types.ModuleType("mujoco.osmesa")

    class GLContext:
        def __init__(self, *_):
            raise OSError("libOSMesa.so: cannot open shared object file")

    broken.GLContext = GLContext
    monkeypatch.setitem(sys.modules, "mujoco.osmesa", broken)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    with pytest.raises(RenderingUnavailable, match="osmesa.*libOSMesa"):
        FrameRenderer(64, 48)


def test_a_closed_renderer_refuses(state):
    renderer = renderer_or_skip(64, 48)
    renderer.close()
    with pytest.raises(RuntimeError, match="closed"):
        renderer.render(state)
