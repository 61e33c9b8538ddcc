"""Segmentation measures: switch points, true boundaries, one-to-one matching within +-1."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from irl.analysis.segmentation import (binary_fraction, count_matches, precision_recall_f1, segmentation_scores,
                                       switch_points, true_boundaries)


def as_bool(steps, length):
    x = np.zeros(length, bool)
    x[list(steps)] = True
    return x


def test_true_boundaries_are_the_first_steps_of_each_new_subgoal():
    # progress counts colours visited before acting: subgoals change when it goes 1 -> 2 and 3 -> 4
    progress = np.array([[0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6]])
    mask = np.array([[True] * 10 + [False] * 2])
    np.testing.assert_array_equal(np.flatnonzero(true_boundaries(progress, mask)[0]), [4, 7])
    # on the ant a subgoal is one colour: every visit starts a new one
    np.testing.assert_array_equal(np.flatnonzero(true_boundaries(progress, mask, colors_per_subgoal=1)[0]),
                                  [2, 4, 6, 7, 9])


def test_switch_points_exclude_the_forced_start_and_padding():
    beta = np.array([[1.0, 0.2, 0.5, 0.49, 0.9, 1.0]])
    mask = np.array([[True, True, True, True, True, False]])
    np.testing.assert_array_equal(np.flatnonzero(switch_points(beta, mask)[0]), [2, 4])


def test_matching_is_one_to_one_within_the_tolerance():
    true = as_bool([5, 10], 16)
    assert count_matches(as_bool([5, 10], 16), true) == 2
    assert count_matches(as_bool([4, 11], 16), true) == 2  # both off by one
    assert count_matches(as_bool([5, 6], 16), true) == 1  # two switches cannot share one boundary
    assert count_matches(as_bool([7, 12], 16), true) == 0  # off by two
    # a switch between two close boundaries may serve only one of them
    assert count_matches(as_bool([6], 16), as_bool([5, 7], 16)) == 1
    # the earliest free switch goes to the earlier boundary, leaving the later switch for the later one
    assert count_matches(as_bool([4, 6], 16), as_bool([5, 7], 16)) == 2


def test_scores_on_a_hand_made_batch():
    progress = np.array([[0, 0, 1, 2, 2, 3, 4, 4], [0, 1, 2, 2, 2, 2, 2, 2]])
    mask = np.array([[True] * 8, [True] * 4 + [False] * 4])
    # boundaries: episode 0 at 3 and 6, episode 1 at 2
    beta = np.array([[1.0, 0.0, 0.0, 0.95, 0.0, 0.0, 0.0, 0.98],  # 3 exact, 7 off by one
                     [1.0, 0.0, 0.3, 0.0, 0.9, 0.9, 0.9, 0.9]])  # misses 2; padding ignored
    scores = segmentation_scores(beta, mask, progress)
    assert (scores["precision"], scores["recall"]) == (1.0, 2 / 3)
    np.testing.assert_allclose(scores["f1"], 2 * (2 / 3) / (1 + 2 / 3))
    assert scores["switches_per_episode"] == (3 + 1) / 2  # the start counts: 1 + 2 and 1 + 0
    assert scores["subgoals_per_episode"] == (3 + 2) / 2
    # real steps after the start: 7 + 3 values, of which 0.3 alone is neither near 0 nor near 1
    np.testing.assert_allclose(scores["binary_fraction"], 9 / 10)


def test_nothing_to_find_and_nothing_found_is_perfect():
    assert precision_recall_f1(0, 0, 0) == (1.0, 1.0, 1.0)
    assert precision_recall_f1(0, 3, 0)[2] == 0.0 and precision_recall_f1(0, 0, 3)[2] == 0.0


episodes = st.lists(st.lists(st.integers(0, 1), min_size=4, max_size=30), min_size=1, max_size=6)


def progress_from_increments(increments):
    """Padded progress [B, T] and mask from per-step increments (0 or 1) per episode."""
    length = max(len(x) for x in increments)
    progress = np.zeros((len(increments), length), int)
    mask = np.zeros((len(increments), length), bool)
    for i, inc in enumerate(increments):
        progress[i, :len(inc)] = np.cumsum([0] + inc[:-1])
        progress[i, len(inc):] = progress[i, len(inc) - 1]
        mask[i, :len(inc)] = True
    return progress, mask


@given(episodes)
def test_a_gate_that_fires_exactly_at_the_boundaries_is_perfect(increments):
    progress, mask = progress_from_increments(increments)
    beta = true_boundaries(progress, mask).astype(float)
    beta[:, 0] = 1.0
    scores = segmentation_scores(beta, mask, progress)
    assert scores["f1"] == 1.0 and scores["binary_fraction"] == 1.0
    assert scores["switches_per_episode"] == scores["subgoals_per_episode"]


@given(episodes, st.integers(-1, 1))
def test_switches_shifted_by_at_most_the_tolerance_still_score_perfectly(increments, shift):
    progress, mask = progress_from_increments(increments)
    true = true_boundaries(progress, mask)
    shifted = np.zeros_like(true)
    for i, row in enumerate(true):
        for t in np.flatnonzero(row):
            shifted[i, np.clip(t + shift, 1, mask[i].sum() - 1)] = True
    # boundaries are >= 2 steps apart (a subgoal is two visits), so shifted switches stay distinct
    assert shifted.sum() == true.sum()
    assert segmentation_scores(shifted.astype(float), mask, progress)["f1"] == 1.0


@given(st.lists(st.booleans(), min_size=2, max_size=40), st.lists(st.booleans(), min_size=2, max_size=40))
def test_matching_is_symmetric_and_bounded(a, b):
    n = min(len(a), len(b))
    a, b = np.array(a[:n]), np.array(b[:n])
    m = count_matches(a, b)
    assert m == count_matches(b, a) and m <= min(a.sum(), b.sum())
    brute = brute_force_matching(a, b)
    assert m == brute


def brute_force_matching(a, b, tolerance=1):
    """Maximum bipartite matching by augmenting paths (obviously correct, slow)."""
    left, right = list(np.flatnonzero(a)), list(np.flatnonzero(b))
    owner = {}

    def augment(i, seen):
        for j in range(len(right)):
            if abs(left[i] - right[j]) <= tolerance and j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(left)))


def test_binary_fraction_ignores_the_start_and_padding():
    beta = np.array([[0.5, 0.05, 0.95, 0.5]])
    assert binary_fraction(beta, np.array([[True, True, True, False]])) == 1.0
