import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ANY, ENV, POST, PRETRAIN, ROW_COLORS, ROW_WALLS, make_state, reference_leg_distances, reset, step
from hypothesis import given
from hypothesis import strategies as st

import irl.envs as envs
from irl.envs import grid_pinpad as gp
from irl.envs.grid_pinpad import GRID_SIZE, OBS_SIZE
from irl.envs.key_bits import key_bits

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
seeds = st.integers(0, 2**31 - 1)


def test_make_tables_and_errors():
    assert ENV.obs_size == 637 == OBS_SIZE
    assert PRETRAIN.tasks.shape == (16, 12) and set(np.asarray(PRETRAIN.task_lens)) == {6}
    assert POST.tasks.shape == (1, 12) and list(np.asarray(POST.tasks[0])) == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]
    assert bool(ANY.any_task) and not bool(PRETRAIN.any_task)
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make("gridpinpad")
    with pytest.raises(ValueError, match="tasks="):
        envs.make("grid_pinpad", tasks="postt")
    with pytest.raises(ValueError, match="outside"):
        envs.make("grid_pinpad", tasks=("0-9",))
    with pytest.raises(ValueError, match="repeats"):
        envs.make("grid_pinpad", tasks=("0-0-1",))
    with pytest.raises(ValueError, match="time_limit"):
        envs.make("grid_pinpad", time_limit=0)


def walk(state, cells, params):
    """Step through neighbouring cells; returns the (progress, done, reward, info) of each step."""
    moves = {(1, 0): DOWN, (-1, 0): UP, (0, 1): RIGHT, (0, -1): LEFT}
    out = []
    for cell in cells:
        here = np.asarray(state.agent)
        action = moves[(cell[0] - here[0], cell[1] - here[1])]
        _, state, reward, done, info = step(jax.random.key(0), state, action, params)
        out.append((int(state.progress), bool(done), float(reward), info))
    return state, out


@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 3))
def test_move_into_wall_or_off_grid_is_a_noop(row, col, action):
    wall = np.array([row, col]) + np.asarray(gp.grid_paths.MOVES[action])
    spare = [c for c in ([0, 0], [0, 6], [6, 0], [6, 6]) if c != list(wall)][:3]
    colors = [[r, c] for r in (0, 6) for c in (1, 2, 3, 4)]  # edges, clear of the 3x3 around the agent
    colors = [c for c in colors if c != list(wall)][:8]
    if len(colors) < 8:
        colors.append([3, 0] if [3, 0] != list(wall) else [3, 6])
    state = make_state([row, col], colors, [wall] + spare)
    _, new, _, done, _ = step(jax.random.key(0), state, action, PRETRAIN)
    assert list(np.asarray(new.agent)) == [row, col] and not bool(done) and int(new.progress) == 0
    corner = {UP: [0, 5], RIGHT: [5, 6], DOWN: [6, 5], LEFT: [5, 0]}[action]
    state = make_state(corner, [[2, c] for c in range(1, 6)] + [[4, 1], [4, 2], [4, 3]], [[3, 3], [3, 4], [4, 4], [4, 5]])
    _, new, _, done, _ = step(jax.random.key(0), state, action, PRETRAIN)
    assert list(np.asarray(new.agent)) == corner and not bool(done)


def test_visiting_next_color_advances_and_wrong_color_fails():
    state = make_state([1, 0], ROW_COLORS, ROW_WALLS, task="0-1-4-5-0-1")
    _, s1, r, done, info = step(jax.random.key(0), state, UP, PRETRAIN)  # onto colour 0
    assert int(s1.progress) == 1 and not bool(done) and float(r) == 0.0
    assert int(info["subgoal"]) == 0  # still pursuing the pair (0, 1)
    _, s2, r, done, info = step(jax.random.key(0), s1, RIGHT, PRETRAIN)  # onto colour 1
    assert int(s2.progress) == 2 and not bool(done) and int(info["subgoal"]) == 2  # next pair (4, 5)
    _, s3, r, done, info = step(jax.random.key(0), s2, RIGHT, PRETRAIN)  # onto colour 2: wrong
    assert bool(done) and bool(info["failure"]) and float(r) == 0.0 and not bool(info["success"])
    # re-entering a colour visited earlier is a failure too
    _, s4, _, _, _ = step(jax.random.key(0), s2, DOWN, PRETRAIN)  # off colour 1
    _, _, r, done, info = step(jax.random.key(0), s4, UP, PRETRAIN)  # back onto colour 1
    assert bool(done) and bool(info["failure"]) and float(r) == 0.0


def test_standing_still_on_a_color_visits_nothing():
    state = make_state([0, 0], ROW_COLORS, ROW_WALLS, task="0-1-4-5-0-1", progress=1)
    for action in (UP, LEFT):  # off the grid from the corner
        _, new, r, done, info = step(jax.random.key(0), state, action, PRETRAIN)
        assert int(new.progress) == 1 and not bool(done) and not bool(info["failure"])


def test_reward_one_only_at_completion():
    colors = [[1, 0], [1, 1], [6, 6], [6, 5], [3, 1], [3, 0], [5, 6], [4, 6]]
    state = make_state([0, 0], colors, [[0, 3], [0, 4], [0, 5], [0, 6]], task="0-1-4-5-0-1")
    # colours 0, 1, then 4, 5, then 0, 1 again
    path = [[1, 0], [1, 1], [1, 2], [2, 2], [3, 2], [3, 1], [3, 0], [2, 0], [1, 0], [1, 1]]
    state, out = walk(state, path, PRETRAIN)
    assert [o[2] for o in out] == [0.0] * 9 + [1.0] and [o[1] for o in out] == [False] * 9 + [True]
    assert bool(out[-1][3]["success"]) and int(state.progress) == 6


def test_truncation_at_time_limit():
    state = make_state([3, 3], ROW_COLORS, ROW_WALLS, t=0)
    step_n = jax.jit(lambda s: jax.lax.scan(lambda s, _: (lambda o: (o[1], (o[3], o[4]["truncated"])))(ENV.step(jax.random.key(0), s, (s.t % 2) * 2, PRETRAIN)), s, None, length=100))
    final, (done, truncated) = step_n(state)  # up/down forever in the open field
    assert not np.asarray(done[:99]).any() and bool(done[99]) and bool(truncated[99])
    assert int(final.t) == 100 == int(PRETRAIN.time_limit)


def test_observation_layout_and_latent_task():
    state = make_state([3, 3], ROW_COLORS, ROW_WALLS, task="0-1-4-5-0-1", progress=0)
    obs = np.asarray(gp.observation(state))
    assert obs.shape == (637,) and obs.dtype == np.uint8 and obs.sum() == 13
    grid = obs.reshape(GRID_SIZE, GRID_SIZE, 13)
    for c, (r, col) in enumerate(ROW_COLORS):
        assert grid[r, col, c] == 1
    for w, (r, col) in enumerate(ROW_WALLS):
        assert grid[r, col, 8 + w] == 1
    assert grid[3, 3, 12] == 1
    other = make_state([3, 3], ROW_COLORS, ROW_WALLS, task="6-7-2-3-0-1", progress=3)
    assert (np.asarray(gp.observation(other)) == obs).all()


@given(seeds, st.sampled_from(["pretrain", "post"]))
def test_reset_never_overlaps_and_is_solvable_in_time(seed, mode):
    params = PRETRAIN if mode == "pretrain" else POST
    obs, s = reset(jax.random.key(seed), params)
    cells = np.concatenate([np.asarray(s.colors), np.asarray(s.walls), np.asarray(s.agent)[None]])
    assert len({tuple(c) for c in cells}) == 13
    assert ((cells >= 0) & (cells < GRID_SIZE)).all()
    assert np.asarray(obs).sum() == 13 and int(s.t) == 0 and int(s.progress) == 0
    ref = np.asarray(reference_leg_distances(s.agent, s.colors, s.walls, s.task, s.task_len))
    assert (ref < gp.grid_paths.UNREACHABLE).all() and ref.sum() <= 100


jit_leg_distances = jax.jit(gp.leg_distances)
jit_draw_layout = jax.jit(gp._draw_layout)


@given(seeds, st.sampled_from([0, 5, 9]), st.integers(1, 12))
def test_fast_leg_distances_match_reference(seed, task_index, length):
    """The bitboard search equals one distance field per leg, on arbitrary (unchecked) layouts
    and tasks cut to any length (the legs are searched in groups; a group may be cut short)."""
    table = np.concatenate([np.asarray(PRETRAIN.tasks), np.asarray(POST.tasks)])
    task = np.asarray(table[16 if task_index == 9 else task_index])  # 9 stands for the post task
    n = min(length, int((task >= 0).sum()))
    task = jnp.asarray(np.where(np.arange(task.size) < n, task, -1))
    agent, colors, walls = jit_draw_layout(jax.random.bits(jax.random.key(seed), (13,), jnp.uint32))
    fast = np.asarray(jit_leg_distances(agent, colors, walls, task, n))
    slow = np.asarray(reference_leg_distances(agent, colors, walls, task, n))
    assert (fast == slow).all()


def test_reset_draws_every_task_equally_often():
    """Chi-square over the 16 pretraining tasks (15 dof: p < 1e-4 above ~44)."""
    keys = jax.random.split(jax.random.key(2), 16 * 200)
    task_id = np.asarray(jax.jit(jax.vmap(lambda k: ENV.reset(k, PRETRAIN)[1].task_id))(keys))
    counts = np.bincount(task_id, minlength=16)
    assert ((counts - 200) ** 2 / 200).sum() < 44, counts


def test_draw_cells_is_uniform():
    """Uniform from the words the environment draws them from (key_bits, counters as a reset's)."""
    draw = jax.vmap(lambda k: gp.draw_cells(key_bits(k, 1 + jnp.arange(13)), 49))
    cells = jax.jit(draw)(jax.random.split(jax.random.key(0), 49 * 400))
    cells = np.asarray(cells)
    assert all(len(set(row)) == 13 for row in cells[:500])
    for k in (0, 6, 12):  # every object is uniform over the 49 cells
        counts = np.bincount(cells[:, k], minlength=49)
        chi2 = ((counts - 400) ** 2 / 400).sum()
        assert chi2 < 90, (k, chi2)  # 48 dof: p < 1e-4 above ~90


ANY_COLORS = [[1, 0], [1, 1], [1, 5], [1, 6], [0, 4], [0, 2], [5, 0], [5, 1]]
ANY_WALLS = [[6, 6], [6, 5], [6, 4], [6, 3]]


def test_any_task_mode_fails_when_no_task_has_the_prefix():
    state = make_state([0, 0], ANY_COLORS, ANY_WALLS, task="6-7-2-3-0-1", params=ANY)
    # visits 0 and 1 (a prefix of several tasks), then 2: no pretraining task starts 0-1-2
    path = [[1, 0], [1, 1], [2, 1], [2, 2], [2, 3], [2, 4], [2, 5], [1, 5]]
    _, out = walk(state, path, ANY)
    assert [o[:3] for o in out[:7]] == [(1, False, 0.0)] + [(2, False, 0.0)] * 6
    assert out[7][1] and out[7][2] == 0.0 and bool(out[7][3]["failure"])


def test_any_task_mode_succeeds_on_completing_any_task():
    state = make_state([0, 0], ANY_COLORS, ANY_WALLS, task="6-7-2-3-0-1", params=ANY)
    # visits 0, 1, 4, 5, 2, 3: the pretraining task 0-1-4-5-2-3, not the drawn 6-7-2-3-0-1
    path = [[1, 0], [1, 1], [2, 1], [2, 2], [2, 3], [1, 3], [0, 3], [0, 4], [0, 3], [0, 2], [1, 2], [1, 3],
            [1, 4], [1, 5], [2, 5], [2, 6], [1, 6]]
    state, out = walk(state, path, ANY)
    assert [o[2] for o in out] == [0.0] * 16 + [1.0] and [o[1] for o in out] == [False] * 16 + [True]
    assert bool(out[-1][3]["success"]) and int(state.progress) == 6
    # with the drawn task enforced, the first visit (colour 0, not 6) already fails
    _, out = walk(make_state([0, 0], ANY_COLORS, ANY_WALLS, task="6-7-2-3-0-1"), path[:1], PRETRAIN)
    assert bool(out[0][3]["failure"])


def test_jit_and_vmap():
    keys = jax.random.split(jax.random.key(1), 8)
    obs, states = jax.jit(jax.vmap(ENV.reset, (0, None)))(keys, PRETRAIN)
    assert obs.shape == (8, 637)
    out = jax.jit(jax.vmap(ENV.step, (0, 0, 0, None)))(keys, states, jnp.arange(8) % 4, PRETRAIN)
    assert out[0].shape == (8, 637) and out[2].shape == (8,)


def test_same_key_same_episode_start():
    a = reset(jax.random.key(3), PRETRAIN)
    b = reset(jax.random.key(3), PRETRAIN)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a, b))
