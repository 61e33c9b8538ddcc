"""AntPinpad's rules on scripted torso positions, its reset distribution and observation, and
that reset/step jit and vmap (the physics is MJX's)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import irl.envs as envs
from irl.envs import ant_pinpad as ap

ENV, PARAMS = envs.make("ant_pinpad")
_, POST = envs.make("ant_pinpad", tasks="post")
move_to = jax.jit(ENV.move_to)
reset = jax.jit(ENV.reset)


@pytest.fixture(scope="module")
def resets():
    keys = jax.random.split(jax.random.key(0), 32)
    return jax.device_get(jax.jit(jax.vmap(ENV.reset, (0, None)))(keys, PARAMS))


def scripted(task="0-1-2", colors=((0, 0), (0, 1), (0, 2), (0, 3)), wall=(3, 3), start=(1, 1)):
    """A state of the post-task params with a fixed layout, the torso standing at `start`."""
    _, params = envs.make("ant_pinpad", tasks=(task,))
    _, state = reset(jax.random.key(0), params)
    state = state.replace(colors=jnp.array(colors), walls=jnp.array([wall]), cell=jnp.array(start))
    return place(state, start), params


def place(state, cell, height=0.55, offset=(0.0, 0.0)):
    xy = ap.cell_centre(jnp.array(cell)) + jnp.array(offset)
    qpos = state.physics.qpos.at[:2].set(xy).at[2].set(height)
    return state.replace(physics=state.physics.replace(qpos=qpos))


def walk(state, params, cells):
    outs = []
    for cell in cells:
        obs, state, reward, done, info = move_to(place(state, cell), params)
        outs.append((reward, done, info))
    return state, outs


def test_visiting_the_task_in_order_succeeds_with_reward_one_at_the_end():
    state, params = scripted()
    state, outs = walk(state, params, [(1, 0), (0, 0), (1, 0), (1, 1), (0, 1), (1, 1), (1, 2), (0, 2)])
    rewards = [float(r) for r, _, _ in outs]
    assert rewards == [0.0] * 7 + [1.0] and bool(outs[-1][2]["success"]) and int(state.progress) == 3
    assert not any(bool(d) for _, d, _ in outs[:-1])


def test_staying_on_a_colour_visits_it_once():
    state, params = scripted(task="1-0")
    state, outs = walk(state, params, [(0, 1), (0, 1), (0, 1)])  # entering colour 1, then staying
    assert int(state.progress) == 1 and not any(bool(d) for _, d, _ in outs)


@pytest.mark.parametrize("case", ["wall", "off_grid", "too_low", "too_high", "wrong_colour"])
def test_failures(case):
    state, params = scripted()
    if case == "wall":
        state = place(state, (3, 3))
    elif case == "off_grid":
        state = place(state, (1, 1), offset=(-3.5, 0.0))  # x = -4.5, beyond the left edge at -4
    elif case == "too_low":
        state = place(state, (1, 1), height=0.1)
    elif case == "too_high":
        state = place(state, (1, 1), height=1.1)
    else:
        state = place(state, (0, 2))  # colour 2 before 0
    _, _, reward, done, info = move_to(state, params)
    assert bool(done) and bool(info["failure"]) and float(reward) == 0.0


def test_truncation_at_the_time_limit():
    state, params = scripted()
    state = state.replace(t=jnp.int32(499))
    _, _, _, done, info = move_to(state, params)
    assert bool(done) and bool(info["truncated"]) and not bool(info["failure"])


@given(st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4)), min_size=1, max_size=12))
def test_progress_never_decreases_and_leaving_the_grid_always_ends(path):
    state, params = scripted()
    progress = 0
    for cell in path:
        _, state, _, done, info = move_to(place(state, cell), params)
        off = not (0 <= cell[0] < 4 and 0 <= cell[1] < 4)
        assert int(info["progress"]) >= progress and int(info["progress"]) <= 3
        progress = int(info["progress"])
        if off:
            assert bool(done) and bool(info["failure"])
        if bool(done):
            break


def test_reset_distribution(resets):
    obs, state = resets
    assert obs.shape == (32, ap.OBS_SIZE) and np.isfinite(obs).all()
    xy, z = state.physics.qpos[:, :2], state.physics.qpos[:, 2]
    start = np.asarray(ap.cell_of(jnp.asarray(xy)))
    assert (start == state.cell).all() and ((start >= 0) & (start < 4)).all()
    for i in range(32):  # the start, colours and wall are 6 distinct cells; the task is walkable
        cells = {tuple(c) for c in state.colors[i]} | {tuple(state.walls[i, 0]), tuple(start[i])}
        assert len(cells) == 6
        assert bool(ap.solvable(jnp.asarray(start[i]), jnp.asarray(state.colors[i]), jnp.asarray(state.walls[i]),
                                jnp.asarray(state.task[i]), jnp.asarray(state.task_len[i])))
    init = ENV.mj_model.numeric("init_qpos").data
    assert np.allclose(z, init[2]) and (np.abs(state.physics.qpos[:, 7:] - init[7:]) <= 0.1 + 1e-6).all()
    assert (np.abs(state.physics.qvel) <= 0.1 + 1e-6).all()
    assert np.allclose(np.linalg.norm(state.physics.qpos[:, 3:7], axis=-1), 1.0, atol=1e-5)
    assert len(set(state.task_id.tolist())) > 4 and (state.progress == 0).all()


def test_observation_holds_position_offsets_and_no_task(resets):
    obs, state = resets
    xy = state.physics.qpos[0, :2]
    np.testing.assert_allclose(obs[0, 27:29], xy / ap.HALF, rtol=1e-5)
    centre0 = np.asarray(ap.cell_centre(jnp.asarray(state.colors[0, 0])))
    np.testing.assert_allclose(obs[0, 29:31], (centre0 - xy) / (2 * ap.HALF), rtol=1e-5, atol=1e-6)
    assert (np.abs(obs[:, -2:]) <= 0.5 + 1e-6).all()
    first = jax.tree.map(lambda x: x[0], resets[1])
    other_task = first.replace(task=jnp.array(POST.tasks[0]), progress=jnp.int32(2))
    np.testing.assert_array_equal(ap.observation(first), ap.observation(other_task))


def test_the_physics_is_brax_mjx_ants_model():
    """The model brax's MJX ant steps: bodies with no joint between them fused (the unfused
    ant.xml has 14 bodies and stepped at 0.86x brax's ant; the same joints and mass)."""
    import brax.envs

    mj_model, model = ap.ant_model()
    brax_sys = brax.envs.get_environment("ant", backend="mjx").sys
    assert mj_model.nbody == model.nbody == brax_sys.nbody == 10
    assert (model.nq, model.nv, model.nu) == (brax_sys.nq, brax_sys.nv, brax_sys.nu) == (15, 14, 8)
    np.testing.assert_array_equal(model.geom_type, brax_sys.geom_type)
    np.testing.assert_allclose(model.body_mass, brax_sys.body_mass)
    assert (model.opt.solver, model.opt.iterations, model.opt.ls_iterations) == (
        brax_sys.opt.solver, brax_sys.opt.iterations, brax_sys.opt.ls_iterations)


def test_step_runs_the_physics_under_jit_and_vmap(resets):
    state = jax.tree.map(lambda x: x[:2], resets[1])
    step = jax.jit(jax.vmap(ENV.step, (None, 0, 0, None)))
    action = jnp.ones((2, 8))
    obs, new, reward, done, info = step(jax.random.key(0), state, action, PARAMS)
    assert obs.shape == (2, ap.OBS_SIZE) and (new.t == 1).all()
    assert not np.allclose(np.asarray(new.physics.qpos[:, 7:]), state.physics.qpos[:, 7:])  # torques moved joints
    np.testing.assert_array_equal(np.asarray(new.physics.ctrl), np.ones((2, 8)))


def test_post_task_and_bad_names():
    assert POST.tasks[0, :4].tolist() == [0, 1, 2, 3] and int(POST.task_lens[0]) == 4
    assert int(PARAMS.time_limit) == 500 and PARAMS.tasks.shape[0] == 16
    with pytest.raises(ValueError, match="colour outside"):
        envs.make("ant_pinpad", tasks=("0-4",))


def test_render_draws_the_arena_and_the_path(resets, tmp_path):
    from irl.envs.render import render_ant, save_png

    state = jax.tree.map(lambda x: x[0], resets[1])
    xy = np.asarray(state.physics.qpos[:2])
    image = render_ant(state, np.stack([xy, xy + 1.0, xy + 2.0]))
    assert image.shape == (4 * 80 + 22, 4 * 80, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 6  # floor, grid, 4 colours, wall, path
    assert save_png(image, tmp_path / "ant.png").stat().st_size > 0
