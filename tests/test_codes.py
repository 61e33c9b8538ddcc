import numpy as np

from irl.analysis.codes import code_readout, nearest_centroid_accuracy, segment_codes


def test_each_segment_is_read_one_step_after_it_starts_or_at_the_episode_end():
    z = np.arange(8, dtype=float).reshape(1, 8, 1)
    subgoal = np.array([[0, 0, 1, 1, 1, 2, 2, 2]])
    mask = np.array([[True] * 6 + [False] * 2])  # the episode ends at step 5, the third segment's first
    actions = np.array([[3, 0, 1, 1, 2, 0, 0, 0]])
    codes, seg_subgoal, first_action, episode = segment_codes(z, mask, subgoal, actions)
    np.testing.assert_array_equal(codes[:, 0], [1, 3, 5])
    np.testing.assert_array_equal(seg_subgoal, [0, 1, 2])
    np.testing.assert_array_equal(first_action, [3, 1, 0])
    np.testing.assert_array_equal(episode, [0, 0, 0])


def test_a_code_that_names_the_subgoal_reads_out_the_subgoal_and_not_the_action():
    rng = np.random.default_rng(0)
    b, t = 200, 12
    subgoal = np.repeat(rng.integers(0, 4, (b, 3)), 4, axis=1)  # three segments of 4 steps
    actions = rng.integers(0, 4, (b, t))
    z = np.eye(4)[subgoal] * 3 + rng.normal(size=(b, t, 4)) * 0.3
    out = code_readout(z, np.ones((b, t), bool), subgoal, actions)
    assert out["subgoal"]["accuracy"] > 0.95
    assert abs(out["first_action"]["accuracy"] - out["first_action"]["chance"]) < 0.1
    # continuous actions (the ant) have no first-action readout
    assert "first_action" not in code_readout(z, np.ones((b, t), bool), subgoal, actions.astype(np.float32))


def test_readout_is_scored_on_rows_it_was_not_fitted_on():
    x = np.array([[0.0], [0.0], [1.0], [1.0]])
    labels = np.array([0, 1, 1, 0])  # fitted rows 0 and 2 say 0 -> 0.0, 1 -> 1.0; scored rows disagree
    assert nearest_centroid_accuracy(x, labels) == {"accuracy": 0.0, "chance": 0.5}


def test_no_episode_is_both_fitted_on_and_scored():
    """A code that only tells episodes apart reads nothing out of episodes it was not fitted
    on. Were segments split one by one, each scored segment would have a sibling from its own
    episode among the fitted ones, and a label shared within an episode (here the first
    action, as a layout's geometry can make it) would read out from the episode's identity."""
    rng = np.random.default_rng(2)
    b, t = 64, 12
    subgoal = np.tile(np.repeat(np.arange(3), 4), (b, 1))  # three segments of 4 steps
    actions = np.repeat(rng.integers(0, 4, (b, 1)), t, axis=1)  # one first action per episode
    z = np.repeat(np.eye(b)[:, None] * 5, t, axis=1)  # the code names the episode, nothing else
    out = code_readout(z, np.ones((b, t), bool), subgoal, actions)
    assert out["first_action"]["accuracy"] < out["first_action"]["chance"] + 0.1


def test_a_switch_late_within_the_tolerance_still_reads_its_segments_code():
    """The ant's switch counts as on a boundary up to 5 steps off it; a code that names the
    subgoal, switched 3 steps late, reads out the subgoal when read that far in, where one
    step in it is still the previous segment's code."""
    rng = np.random.default_rng(3)
    b, t, late = 128, 60, 3
    # 5 segments of 12 steps, each subgoal one of the 3 that differ from the one before
    segments = np.cumsum(rng.integers(1, 4, (b, 5)), axis=1) % 4
    subgoal = np.repeat(segments, 12, axis=1)
    switched = np.concatenate([subgoal[:, :1].repeat(late, 1), subgoal[:, :-late]], axis=1)
    z = np.eye(4)[switched] * 3
    assert code_readout(z, np.ones((b, t), bool), subgoal, tolerance=5)["subgoal"]["accuracy"] == 1.0
    assert code_readout(z, np.ones((b, t), bool), subgoal, tolerance=1)["subgoal"]["accuracy"] < 0.6


def test_the_cell_readout_counts_an_offset_on_the_scored_half_as_error():
    """r2 is one minus the scored half's mean squared error over its variance: a readout that
    is right on the fitted episodes and off by a constant on the scored ones explains nothing."""
    from irl.analysis.codes import linear_r2

    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 2))
    groups = np.arange(200)
    y = x + np.where(groups % 2 == 1, 5.0, 0.0)[:, None]  # the scored (odd) half shifted by 5
    assert linear_r2(x, x, groups)["r2"] > 0.99
    assert linear_r2(x, y, groups)["r2"] < 0


def test_the_subgoal_chain_counts_episodes_that_got_at_least_k_subgoals_and_the_chance_of_each_next():
    from irl.analysis.codes import subgoal_chain

    # task colours visited, two per subgoal: 0, 1 (none done), 2, 3 (one), 4 (two), 6 (three: all)
    chain = subgoal_chain(np.array([0, 1, 2, 3, 4, 6, 6, 6]), n_subgoals=3, colors_per_subgoal=2)
    np.testing.assert_allclose(chain["reached"], [6 / 8, 4 / 8, 3 / 8])
    np.testing.assert_allclose(chain["given_previous"], [6 / 8, 4 / 6, 3 / 4])
    # no episode past the first subgoal: the chance of the later ones is unknown, not zero
    assert subgoal_chain(np.array([2, 0]), 3, 2)["given_previous"] == [0.5, 0.0, None]


def test_a_code_that_names_the_target_cell_reads_out_the_cell_and_not_the_subgoal():
    from irl.analysis.codes import grid_target_cells

    rng = np.random.default_rng(1)
    b, t, g, c = 300, 8, 7, 13
    subgoal = np.repeat(rng.integers(0, 4, (b, 2)), 4, axis=1)  # two segments of 4 steps
    cells = rng.integers(0, g * g, (b, t, 8))  # where each colour lies at each step (a fresh layout per row)
    cells[:] = cells[:, :1]
    obs = np.zeros((b, t, g * g, c), np.uint8)
    np.put_along_axis(obs[..., :8], cells[:, :, None, :], 1, axis=-2)
    target = grid_target_cells(obs.reshape(b, t, -1), subgoal, g, c, 2)
    np.testing.assert_array_equal(target[..., 0] * g + target[..., 1],
                                  np.take_along_axis(cells, 2 * subgoal[..., None], -1)[..., 0])
    z = target + rng.normal(size=(b, t, 2)) * 0.1  # a code that is the cell, whatever the colour
    out = code_readout(z, np.ones((b, t), bool), subgoal, None, target)
    assert out["target_cell"]["r2"] > 0.95 and out["subgoal"]["accuracy"] < out["subgoal"]["chance"] + 0.1
