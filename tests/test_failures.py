import jax
import numpy as np
from flax import struct

from irl.analysis.failures import CAUSES, classify, failure_causes

POST_TASK = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3])
# colour c on cell (c // 4 * 3, c % 4 + 3): colours 0-3 on row 0, 4-7 on row 3, columns 3..6
COLORS = np.array([[c // 4 * 3, c % 4 + 3] for c in range(8)])
TIME_LIMIT = 100


def one(previous, final, progress=0, success=False, length=10, colors=COLORS):
    return int(classify(np.array([previous]), np.array([final]), colors[None], POST_TASK[None], np.array([progress]),
                        np.array([success]), np.array([length]), TIME_LIMIT)[0])


def test_each_way_an_episode_can_end_gets_its_own_cause():
    assert CAUSES[one((0, 2), (0, 3), progress=0, success=True)] == "success"
    # heading for colour 0 at (0, 3) from (1, 4), the step up lands on colour 1 at (0, 4): closer, wrong colour
    assert CAUSES[one((1, 4), (0, 4))] == "collision_en_route"
    # heading for colour 0 from (2, 3), the step down lands on colour 4 at (3, 3), another subgoal's first colour
    assert CAUSES[one((2, 3), (3, 3))] == "other_subgoal"
    # the same move onto colour 5, a second colour: off course
    assert CAUSES[one((2, 4), (3, 4))] == "off_course"
    # heading for colour 1 (progress 1), stepping back onto colour 0 (moved to (5, 0)), its own
    # subgoal's first colour: off course, not another subgoal
    far = COLORS.copy()
    far[0] = (5, 0)
    assert CAUSES[one((4, 0), (5, 0), progress=1, colors=far)] == "off_course"
    assert CAUSES[one((2, 0), (2, 1), length=TIME_LIMIT)] == "timeout"


@struct.dataclass
class _State:
    agent: np.ndarray
    colors: np.ndarray
    task: np.ndarray
    progress: np.ndarray


@struct.dataclass
class _Episodes:
    success: np.ndarray
    length: np.ndarray
    final: _State
    previous: _State


def test_fractions_add_up_and_failures_are_counted_at_their_subgoal():
    previous = np.array([(0, 2), (1, 4), (2, 3), (2, 4)])
    final = np.array([(0, 3), (0, 4), (3, 3), (3, 4)])
    progress = np.array([12, 0, 2, 4])  # the first succeeded; the others failed on subgoals 0, 1 and 2
    state = lambda agent: _State(agent=agent, colors=np.repeat(COLORS[None], 4, 0),
                                 task=np.repeat(POST_TASK[None], 4, 0), progress=progress)
    episodes = _Episodes(success=np.array([True, False, False, False]), length=np.full(4, 10), final=state(final),
                         previous=state(previous))
    out = failure_causes(episodes, TIME_LIMIT, n_subgoals=6)
    assert abs(sum(out["fractions"].values()) - 1) < 1e-9
    assert out["fractions"] == {"success": 0.25, "collision_en_route": 0.5, "other_subgoal": 0.25, "off_course": 0.0,
                                "timeout": 0.0}
    assert out["failed_at_subgoal"] == [0.25, 0.25, 0.25, 0.0, 0.0, 0.0]


def test_the_rollout_keeps_the_state_before_each_episode_last_step():
    from helpers import ENV, POST

    from irl.models.base import make_base_model
    from irl.rollout import run_base_model

    model = make_base_model("transformer", n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48, n_buckets=8,
                            max_distance=32, encoder="agent_relative")
    run = jax.jit(run_base_model, static_argnums=(0, 2, 5), static_argnames=("max_steps", "last_states"))
    episodes = run(model, model.init(jax.random.key(0)), ENV, POST, jax.random.key(1), 32, max_steps=30,
                   last_states=True)
    previous, final = jax.device_get((episodes.previous, episodes.final))
    np.testing.assert_array_equal(final.t, previous.t + 1)
    np.testing.assert_array_equal(final.t, episodes.length)
    assert (np.abs(final.agent - previous.agent).sum(-1) <= 1).all()
    assert episodes.obs is None  # last_states alone records no observations
