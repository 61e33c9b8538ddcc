"""The ant expert's training environment, its fresh auto-resets, its weights on disk, its
episodes, and a tiny run of brax's PPO through our trainer (resume included)."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brax.envs.base import Env, State

import irl.envs as envs
from irl.experts import ant_expert, ant_ppo
from irl.envs.ant_pinpad import N_JOINTS, cell_of
from irl.experts.ant_directions import (DIRECTION_XY, direction_features, direction_reward, path_directions,
                                        path_progress_reward)

TINY = ant_expert.ExpertNetworks((8,), (8,))


@pytest.fixture(scope="module")
def untrained():
    return ant_expert.AntExpert(TINY, ant_expert.initial_params(TINY, jax.random.key(0)), {"steps": 0})


@pytest.fixture(scope="module")
def direction_following():
    """The expert's training environment, its reset and step compiled once for the module."""
    env = ant_ppo.DirectionFollowing()
    return env, jax.jit(env.reset), jax.jit(env.step)


def test_training_env_observes_directions_and_is_rewarded_along_them(direction_following):
    env, reset, step = direction_following
    state = reset(jax.random.PRNGKey(1))
    assert state.obs.shape == (ant_expert.EXPERT_OBS_SIZE,)
    assert np.allclose(state.obs[-64:], direction_features(state.pipeline_state))
    state = step(state, jnp.full(8, 0.5))
    assert np.isclose(float(state.reward), float(direction_reward(state.pipeline_state)))
    assert float(state.done) == 0.0 and set(ant_ppo.EPISODE_METRICS) <= set(state.metrics)


def test_path_progress_reward_is_capped_at_the_speed_cap():
    env = ant_ppo.DirectionFollowing(reward="path_progress", speed_cap=0.3)
    start = jax.jit(env.reset)(jax.random.PRNGKey(1))
    world = start.pipeline_state
    # the torso thrown at 3 m/s along its cell's path direction
    direction = path_directions(world)[tuple(cell_of(world.physics.qpos[:2]))]
    qvel = world.physics.qvel.at[:2].set(3.0 * DIRECTION_XY[direction])
    start = start.replace(pipeline_state=world.replace(physics=world.physics.replace(qvel=qvel)))
    stepped = jax.jit(env.step)(start, jnp.zeros(8))
    uncapped = float(path_progress_reward(start.pipeline_state, stepped.pipeline_state, jnp.array(False)))
    assert uncapped > 0.5 and np.isclose(float(stepped.reward), 0.3)
    with pytest.raises(ValueError, match="unknown expert reward"):
        ant_ppo.DirectionFollowing(reward="speed")


def test_fresh_resets_draw_new_layouts_where_brax_would_replay_the_first():
    env = ant_ppo.wrap_for_training(ant_ppo.DirectionFollowing(), episode_length=500)
    state = jax.jit(env.reset)(jax.random.split(jax.random.PRNGKey(2), 8))  # brax: raw uint32 keys
    first_colors = np.asarray(state.pipeline_state.colors)
    # lift every torso out of its height range: each episode fails on the next step
    qpos = state.pipeline_state.physics.qpos.at[:, 2].set(3.0)
    lifted = state.replace(pipeline_state=state.pipeline_state.replace(
        physics=state.pipeline_state.physics.replace(qpos=qpos)))
    after = jax.jit(env.step)(lifted, jnp.zeros((8, 8)))
    assert np.all(np.asarray(after.done) == 1.0) and np.all(np.asarray(after.pipeline_state.t) == 0)
    assert np.all(np.asarray(after.metrics["failure"]) == 1.0)
    assert not np.array_equal(np.asarray(after.pipeline_state.colors), first_colors)
    assert np.all(np.asarray(after.pipeline_state.physics.qpos[:, 2]) < 1.0)  # standing again


def test_failure_penalty_is_paid_on_the_failing_step_only(direction_following):
    _, reset, plain_step = direction_following
    penalised_step = jax.jit(ant_ppo.DirectionFollowing(failure_penalty=5.0).step)
    state = reset(jax.random.PRNGKey(4))
    lifted = state.replace(pipeline_state=state.pipeline_state.replace(physics=state.pipeline_state.physics.replace(
        qpos=state.pipeline_state.physics.qpos.at[2].set(3.0))))
    action = jnp.full(8, 0.3)
    for start, penalty in ((state, 0.0), (lifted, 5.0)):
        a, b = plain_step(start, action), penalised_step(start, action)
        assert float(b.metrics["failure"]) == float(penalty > 0)
        assert np.isclose(float(b.reward), float(a.reward) - penalty)


def test_weights_round_trip_through_disk(tmp_path, untrained):
    ant_expert.save(tmp_path, untrained.params, TINY, {"steps": 7})
    loaded = ant_expert.AntExpert.load(tmp_path)
    assert loaded.networks == TINY and loaded.meta["steps"] == 7
    obs = jax.random.normal(jax.random.key(3), (4, ant_expert.EXPERT_OBS_SIZE))
    for deterministic in (True, False):
        a = untrained.policy(deterministic)(obs, jax.random.key(4))
        b = loaded.policy(deterministic)(obs, jax.random.key(4))
        assert a.shape == (4, 8) and np.allclose(a, b) and np.all(np.abs(np.asarray(a)) <= 1.0)


def test_loading_a_missing_expert_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_ant_expert"):
        ant_expert.AntExpert.load(tmp_path)


def test_episodes_are_padded_and_reproducible(untrained):
    world, params = envs.make("ant_pinpad", time_limit=12)
    run = jax.jit(lambda k: ant_expert.run_episodes(untrained, world, params, k, 6, deterministic=False))
    episodes = run(jax.random.key(5))
    assert episodes.obs.shape == (6, 13, 41) and episodes.actions.shape == (6, 12, 8)
    mask, length = np.asarray(episodes.mask), np.asarray(episodes.length)
    assert np.array_equal(mask.sum(1), length) and np.all(mask[:, :1])
    assert np.all(np.diff(mask.astype(int), axis=1) <= 0)  # a prefix of steps
    for i in np.flatnonzero(length < 12):  # after the end: actions 0, the last observation repeats
        assert np.all(np.asarray(episodes.actions[i, length[i]:]) == 0)
        assert np.allclose(episodes.obs[i, length[i] + 1:], episodes.obs[i, length[i]])
        assert np.all(np.asarray(episodes.progress[i, length[i]:]) == int(episodes.final.progress[i]))
    again = run(jax.random.key(5))
    assert np.array_equal(np.asarray(again.actions), np.asarray(episodes.actions))


def test_the_mean_action_is_the_tanh_of_the_mean_and_samples_spread_around_it(untrained):
    obs = jax.random.normal(jax.random.key(6), (2, ant_expert.EXPERT_OBS_SIZE))
    mean = untrained.policy(True)(obs, jax.random.key(0))
    samples = jax.vmap(lambda k: untrained.policy(False)(obs, k))(jax.random.split(jax.random.key(1), 2000))
    assert np.array_equal(np.asarray(mean), np.asarray(untrained.policy(True)(obs, jax.random.key(9))))
    assert not np.allclose(samples[0], mean) and np.asarray(samples).std(0).min() > 0.05
    # tanh of a Gaussian: the median sample is the mean action
    np.testing.assert_allclose(np.median(np.asarray(samples), axis=0), mean, atol=0.1)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="multiple of num_envs"):
        ant_ppo.ExpertTrainConfig(num_envs=48, batch_size=16, num_minibatches=2)
    with pytest.raises(ValueError, match="unknown ant expert preset"):
        ant_ppo.preset("huge")
    with pytest.raises(ValueError, match="reward must be one of"):
        ant_ppo.preset("tiny", reward="speed")
    with pytest.raises(ValueError, match="speed_cap must be >= 0"):
        ant_ppo.preset("tiny", speed_cap=-1.0)
    with pytest.raises(ValueError, match="policy_hidden"):
        ant_expert.ExpertNetworks(policy_hidden=())


def test_a_nonfinite_update_keeps_the_last_good_checkpoint(tmp_path, untrained):
    ant_ppo.save_checkpoint(tmp_path, untrained.params, TINY, steps=10, seed=0)
    broken = jax.tree.map(lambda x: x * jnp.nan if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x,
                          untrained.params)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        ant_ppo.save_checkpoint(tmp_path, broken, TINY, steps=20, seed=0)
    assert ant_expert.AntExpert.load(tmp_path).meta["steps"] == 10


class Drift(Env):
    """A stand-in for DirectionFollowing in tests of the trainer's machinery, with the expert's
    observation and action sizes and none of the physics (whose compilation takes minutes): the
    observation drifts with the torques; every episode succeeds after 20 steps."""

    def reset(self, rng):
        zero = jnp.zeros(())
        return State(pipeline_state=zero, obs=jax.random.normal(rng, (ant_expert.EXPERT_OBS_SIZE,)), reward=zero,
                     done=zero, metrics={name: zero for name in ant_ppo.EPISODE_METRICS})

    def step(self, state, action):
        obs = 0.9 * state.obs + jnp.pad(action, (0, ant_expert.EXPERT_OBS_SIZE - action.shape[-1]))
        t = state.pipeline_state + 1
        done = (t >= 20).astype(jnp.float32)
        return state.replace(pipeline_state=t, obs=obs, reward=-jnp.abs(obs).mean(), done=done,
                             metrics=dict(state.metrics, success=done, failure=jnp.zeros(()), visits=done))

    observation_size = ant_expert.EXPERT_OBS_SIZE
    action_size = N_JOINTS
    backend = "generalized"


def test_tiny_training_run_stops_on_its_time_budget_and_resumes(tmp_path):
    cfg = ant_ppo.preset("tiny", num_evals=3)  # two training epochs, a checkpoint after each
    quiet = dict(log=lambda _: None, environment=Drift())
    # a budget spent by the first evaluation still trains to the next checkpoint (it used to
    # stop before any checkpoint existed, and then fail to load one)
    _, finished = ant_ppo.train(cfg, tmp_path, max_seconds=0, **quiet)
    stopped = ant_expert.AntExpert.load(tmp_path / "latest").meta["steps"]
    assert not finished and 0 < stopped < cfg.num_timesteps
    params, finished = ant_ppo.train(cfg, tmp_path, **quiet)  # the same command goes on
    assert finished and ant_expert.AntExpert.load(tmp_path / "latest").meta["steps"] >= cfg.num_timesteps
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [row["steps"] for row in logged]
    assert steps == sorted(steps) and steps[-1] >= cfg.num_timesteps  # resumed, not restarted
    evaluations = [row["eval/episode_success"] for row in logged if "eval/episode_success" in row]
    assert len(evaluations) >= 3 and set(evaluations) == {1.0}  # the environment's own metrics
    again, finished = ant_ppo.train(cfg, tmp_path, **quiet)  # nothing left to do
    assert finished and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params)))
    with pytest.raises(ValueError, match="another config"):
        ant_ppo.train(ant_ppo.preset("tiny", num_evals=3, seed=1), tmp_path)


def test_a_fine_tuning_run_starts_from_the_expert_and_then_resumes_its_own_checkpoint(tmp_path, untrained):
    ant_expert.save(tmp_path / "expert", untrained.params, TINY, {"steps": 5})
    cfg = ant_ppo.preset("tiny", networks=TINY, init_from=str(tmp_path / "expert"))
    steps, params, _ = ant_ppo.starting_point(cfg, tmp_path / "run" / "latest")
    assert steps == 0 and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params),
                                                                    jax.tree.leaves(untrained.params)))
    ant_ppo.save_checkpoint(tmp_path / "run" / "latest", untrained.params, TINY, steps=40, seed=0)
    assert ant_ppo.starting_point(cfg, tmp_path / "run" / "latest")[0] == 40  # its own checkpoint wins
    assert ant_ppo.starting_point(ant_ppo.preset("tiny"), tmp_path / "none")[:2] == (0, None)
    # only an expert of the config's shape, refused before anything is written or compiled
    with pytest.raises(ValueError, match="has networks"):
        ant_ppo.train(ant_ppo.preset("tiny", init_from=str(tmp_path / "expert")), tmp_path / "bad")
    assert not (tmp_path / "bad" / "train_config.json").exists()


def test_end_causes_read_the_last_state():
    from test_ant_pinpad import place, scripted

    state, _ = scripted(colors=((0, 0), (0, 1), (0, 2), (0, 3)), wall=(3, 3))
    finals = [place(state, (0, 2)), place(state, (0, 1)), place(state, (3, 3)), place(state, (1, 1), offset=(5.0, 0.0)),
              place(state, (1, 1), height=0.1), place(state, (1, 1))]
    n, steps = len(finals), 10
    final = jax.tree.map(lambda *xs: jnp.stack(xs), *finals)
    success = jnp.array([True, False, False, False, False, False])
    length = jnp.array([4, 5, 6, 7, 8, steps])
    episodes = ant_expert.AntEpisodes(
        obs=jnp.zeros((n, steps + 1, 41)), actions=jnp.zeros((n, steps, 8)),
        mask=jnp.arange(steps)[None] < length[:, None], subgoal=jnp.zeros((n, steps), jnp.int32),
        progress=jnp.zeros((n, steps), jnp.int32), xy=jnp.zeros((n, steps + 1, 2)), task_id=jnp.zeros(n, jnp.int32),
        success=success, length=length, final=final)
    causes = [ant_expert.END_CAUSES[i] for i in np.asarray(ant_expert.end_causes(episodes))]
    assert causes == ["success", "wrong_colour", "wall", "off_grid", "fallen", "time_limit"]


def test_where_failures_happen_reads_the_leg_and_its_first_cell():
    from irl.envs.ant_pinpad import cell_centre

    steps = 6
    # progress before each step (-1: padding); cells acted from: a failure straight out of the
    # colour just visited, one after leaving it, a success and a time limit
    progress = [[0, 1, 1, 1, -1, -1], [0, 0, 1, 1, 1, -1], [0, 1, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0]]
    cells = [[(0, 0), (0, 1), (0, 1), (0, 1)], [(0, 0), (0, 0), (1, 1), (1, 2), (2, 2)],
             [(0, 0)] * 6, [(3, 3)] * 6]
    length = np.array([4, 5, 6, 6])
    xy = np.zeros((4, steps + 1, 2), np.float32)
    for i, path in enumerate(cells):
        xy[i, : len(path)] = np.asarray(cell_centre(jnp.array(path)))
    n = len(length)
    episodes = ant_expert.AntEpisodes(
        obs=None, actions=None, mask=jnp.arange(steps)[None] < jnp.asarray(length)[:, None], subgoal=None,
        progress=jnp.maximum(jnp.array(progress), 0), xy=jnp.asarray(xy), task_id=jnp.zeros(n, jnp.int32),
        success=jnp.array([False, False, True, False]), length=jnp.asarray(length), final=None)
    causes = jnp.array([ant_expert.END_CAUSES.index(c) for c in ("wrong_colour", "wall", "success", "time_limit")])
    where = ant_expert.where_failures_happen(episodes, causes)
    assert where["failed_on_leg"] == [0.0, 0.5, 0.0]
    assert where["failure_steps_into_leg_median"] == 3.0  # 3 steps into leg 1 each
    assert where["failed_from_the_leg_first_cell"] == 0.25  # the first episode only


def test_the_mean_action_is_the_tanh_of_the_policys_gaussian(untrained):
    obs = jax.random.normal(jax.random.key(7), (3, ant_expert.EXPERT_OBS_SIZE))
    loc, scale = untrained.gaussian(obs)
    assert loc.shape == scale.shape == (3, 8) and np.all(np.asarray(scale) > 0)
    np.testing.assert_allclose(np.tanh(loc), untrained.policy(True)(obs, jax.random.key(0)), atol=1e-6)


def test_colours_visited_counts_a_successful_episode_once_though_its_padding_holds_the_final_progress():
    # progress before each step, as run_episodes pads it: after the end, the final state's
    steps = 6
    progress = jnp.array([[0, 1, 2, 3, 3, 3],  # success on its third step
                          [0, 0, 1, 1, 1, 1],  # failed at its fourth step after one colour
                          [0, 1, 1, 1, 1, 2],  # success on the very last step: no padding
                          [0, 0, 1, 1, 1, 1]])  # a second colour entered on the last step, as time ran out
    length = jnp.array([3, 4, 6, 6])
    final = types.SimpleNamespace(progress=jnp.array([3, 1, 3, 2]))
    episodes = ant_expert.AntEpisodes(
        obs=None, actions=None, mask=jnp.arange(steps)[None] < length[:, None], subgoal=None, progress=progress,
        xy=None, task_id=None, success=jnp.array([True, False, True, False]), length=length, final=final)
    assert ant_expert.colours_visited(episodes).tolist() == [3, 1, 3, 2]
