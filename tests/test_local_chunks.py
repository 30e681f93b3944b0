"""pee.engine.rules.local_chunks: where a chunk of local agents is cut by expected duration."""

from __future__ import annotations

from pee.engine.rules.local_chunks import shortest_first


def test_short_groups_are_cut_from_long_ones_where_it_saves_enough() -> None:
    # three groups of 0.1 s wait 3 x 1.9 s for the 2 s ones together: 5.7 s saved by the cut
    groups = [2.0, 0.1, 2.0, 0.1, 2.0, 0.1]
    assert [1, 3, 5] == shortest_first(groups, gain_s=5.0)
    assert shortest_first(groups, gain_s=6.0) is None


def test_the_best_cut_is_taken_and_indices_keep_their_order() -> None:
    # 0.1 x4 | 1.0 x2 | 1.1 x3: cutting after the 0.1s saves the most
    groups = [1.1, 0.1, 1.0, 0.1, 1.1, 0.1, 1.0, 0.1, 1.1]
    assert [1, 3, 5, 7] == shortest_first(groups, gain_s=0.5)


def test_no_cut_leaves_fewer_than_min_groups_on_a_side() -> None:
    groups = [0.1, 0.1, 2.0, 2.0, 2.0, 2.0]
    assert shortest_first(groups, gain_s=1.0, min_groups=3) is None
    assert [0, 1] == shortest_first(groups, gain_s=1.0, min_groups=2)


def test_equal_durations_and_a_zero_gain_never_cut() -> None:
    assert shortest_first([5.0] * 20, gain_s=0.1) is None
    assert shortest_first([0.1, 0.1, 0.1, 9.0, 9.0, 9.0], gain_s=0.0) is None
