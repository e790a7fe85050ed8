"""DEAN selection kernels on small synthetic score matrices whose top sets are known by construction."""

from __future__ import annotations

import pytest
import torch

from fairpriv.interventions.dean.select import (
    counter,
    select_matrix,
    select_official,
    select_set,
    top_count,
    topk_stable,
    total_counts,
)

T = lambda *xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731


def test_top_count_floors_like_the_released_code():
    assert top_count(5e-7, 884_736) == 0
    assert top_count(1e-3, 884_736) == 884
    assert top_count(0.25, 10) == 2


def test_topk_stable_orders_by_score_then_index():
    scores = torch.tensor([[0.5, 0.9, 0.1], [0.9, 0.5, 0.7]])
    assert topk_stable(scores, 4).tolist() == [1, 3, 5, 0]  # 0.9 (idx 1, 3), 0.7 (5), 0.5 (0 before 4)
    assert topk_stable(scores, 0).tolist() == []
    assert topk_stable(scores, 10).tolist() == [1, 3, 5, 0, 4, 2]


def test_topk_stable_with_many_ties_matches_a_full_stable_sort():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (40, 30), generator=g).float()
    reference = torch.sort(scores.reshape(-1), descending=True, stable=True).indices
    for k in (1, 7, 100, 599, 1200):
        assert torch.equal(topk_stable(scores, k), reference[:k])


def test_set_mode_selects_exactly_p_and_f_outside_g():
    g = T(0, 1)
    p_list = T(1, 2, 3, 4)  # P = {2, 3, 4}
    f_list = T(4, 0, 5, 2)  # F = {4, 5, 2}
    assert select_set(g, p_list, f_list).tolist() == [2, 4]


def test_official_mode_is_a_position_wise_and_over_the_two_lists_sorted_by_index():
    g = T(0, 1)
    p_list = T(1, 2, 3, 4)  # by index: 1 2 3 4
    f_list = T(4, 0, 5, 2)  # by index: 0 2 4 5
    # position: 0 (1 and 0 both in G) 1 (2 and 2 outside) 2 (3 and 4 outside) 3 (4 and 5 outside) -> 2, 3, 4
    # (before issue 15 the lists were paired in score order and this gave [3, 4])
    assert select_official(g, p_list, f_list).tolist() == [2, 3, 4]
    # index 3 matters for privacy only: official mode zeroes it, set mode does not
    assert 3 not in select_set(g, p_list, f_list).tolist()
    # only the members of the lists matter, not their order
    assert select_official(g, p_list.flip(0), f_list.flip(0)).tolist() == [2, 3, 4]


def test_official_mode_refuses_lists_of_different_length():
    with pytest.raises(ValueError, match=r"cut both lists at floor\(q\*N\)"):
        select_official(T(0), T(1, 2), T(1))


def test_disjoint_privacy_and_fairness_tops_zero_nothing_in_set_mode():
    scores_p = torch.arange(100.0)  # privacy top: the largest indices
    scores_f = -torch.arange(100.0)  # fairness top: the smallest
    k = top_count(0.1, 100)
    sel = select_matrix(T(), topk_stable(scores_p, k), topk_stable(scores_f, k), 100, "set")
    assert sel.zeroed.numel() == 0 and sel.coupled == 0
    assert sel.other_mode_zeroed == 10  # the released code would zero all ten privacy-top entries


def test_counts_on_a_known_matrix():
    g, p_list, f_list = T(0, 1), T(1, 2, 3, 4), T(4, 0, 5, 2)
    sel = select_matrix(g, p_list, f_list, numel=12, mode="set")
    assert sel.counts() == {"numel": 12, "G": 2, "P": 3, "F": 3, "P_and_F": 2, "zeroed": 2, "other_mode_zeroed": 3}
    official = select_matrix(g, p_list, f_list, numel=12, mode="official")
    assert official.zeroed.tolist() == [2, 3, 4] and official.other_mode_zeroed == 2
    # set mode's other_mode_zeroed is what official mode zeroes (3; it read 2 before issue 15)


def test_set_mode_with_different_fractions_has_no_official_count():
    sel = select_matrix(T(0), T(1, 2, 3), T(2, 3), numel=10, mode="set")
    assert sel.zeroed.tolist() == [2, 3] and sel.other_mode_zeroed is None
    with pytest.raises(ValueError, match="official mode"):
        select_matrix(T(0), T(1, 2, 3), T(2, 3), numel=10, mode="official")


def test_unknown_mode_or_counting_is_refused():
    with pytest.raises(ValueError, match="mode must be one of set, official"):
        select_matrix(T(), T(), T(), 1, "union")
    with pytest.raises(ValueError, match="counting must be one of floor, release"):
        counter("round")


def test_counting_functions():
    assert counter("floor")(0.7, (3, 30)) == 62 and counter("release")(0.7, (3, 30)) == 63


def test_total_counts_sums_and_propagates_missing_other_mode():
    a = {"numel": 10, "G": 1, "P": 2, "F": 3, "P_and_F": 1, "zeroed": 1, "other_mode_zeroed": 2}
    b = {**a, "other_mode_zeroed": None}
    assert total_counts({"x": a, "y": a})["zeroed"] == 2 and total_counts({"x": a, "y": a})["other_mode_zeroed"] == 4
    assert total_counts({"x": a, "y": b})["other_mode_zeroed"] is None
