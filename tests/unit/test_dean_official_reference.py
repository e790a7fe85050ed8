"""``select_mask`` against independent oracles of DEAN's selection (issue 15).

The official oracle below restates, in plain Python, what the code released with the DEAN paper (ChnQ/DEAN,
``src/dean.py``) does per weight matrix of shape (rows, cols), as read from that code:

1. count: k_u = int(p * cols * rows), k = int(q * cols * rows), multiplied left to right in floating point;
2. take the k_u largest utility scores (G) and the k largest privacy and fairness scores, as flat indices;
3. put each of the privacy and fairness index sets in ascending INDEX order (the release passes them through
   ``torch.unique``, which sorts);
4. walk both ordered lists together, position i at a time: zero the i-th privacy index when the i-th privacy
   index and the i-th fairness index are both outside G (the release's README passes privacy as dataset1, the
   list the zeroed indices are taken from).

Both lists hold k entries whatever p is, so the release runs with p != q, and so does ``mode=official``.
The release finds the top sets with ``torch.topk``, whose pick among equal scores at the cut is not specified;
fairpriv takes the lower flat index first, and the tie cases below check exactly that rule.
"""

from __future__ import annotations

import random

import pytest
import torch

from fairpriv.interventions.dean.select import release_count, top_count
from fairpriv.interventions.dean import select_mask

# ------------------------------------------------------------------------------------------------ oracles


def top_members(scores: list[float], k: int) -> set[int]:
    """The k highest-scoring positions; among equal scores the lower position first (fairpriv's tie rule)."""
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return set(ranked[:k])


def counts(p: float, q: float, rows: int, cols: int, counting: str) -> tuple[int, int]:
    if counting == "release":
        return int(p * cols * rows), int(q * cols * rows)
    n = rows * cols
    return int(p * n // 1), int(q * n // 1)


def official_oracle(u: torch.Tensor, pr: torch.Tensor, fa: torch.Tensor, p: float, q: float,
                    counting: str = "release") -> set[int]:
    rows, cols = u.shape
    k_u, k = counts(p, q, rows, cols, counting)
    g = top_members(u.flatten().tolist(), k_u)
    privacy_in_index_order = sorted(top_members(pr.flatten().tolist(), k))
    fairness_in_index_order = sorted(top_members(fa.flatten().tolist(), k))
    pairs = zip(privacy_in_index_order, fairness_in_index_order)
    return {a for a, b in pairs if a not in g and b not in g}


def set_oracle(u: torch.Tensor, pr: torch.Tensor, fa: torch.Tensor, p: float, q: float,
               counting: str = "floor") -> set[int]:
    rows, cols = u.shape
    k_u, k = counts(p, q, rows, cols, counting)
    g = top_members(u.flatten().tolist(), k_u)
    return (top_members(pr.flatten().tolist(), k) - g) & (top_members(fa.flatten().tolist(), k) - g)


def score_order_pairing(u, pr, fa, p, q) -> set[int]:
    """fairpriv's official mode before issue 15 (lists paired in score order): here only to show that the random
    cases below tell the two apart."""
    rows, cols = u.shape
    k_u, k = counts(p, q, rows, cols, "release")
    g = top_members(u.flatten().tolist(), k_u)
    by_score = lambda s: sorted(range(s.numel()), key=lambda i: (-float(s.flatten()[i]), i))[:k]  # noqa: E731
    return {a for a, b in zip(by_score(pr), by_score(fa)) if a not in g and b not in g}


def as_set(mask: torch.Tensor) -> set[int]:
    return set(torch.nonzero(mask.flatten()).flatten().tolist())


# ------------------------------------------------------------------------------------------------ cases

SHAPES = [(1, 1), (1, 2), (2, 1), (1, 7), (9, 1), (1, 64), (48, 1), (2, 3), (3, 2), (3, 7), (5, 6), (4, 4),
          (8, 5), (16, 12), (3, 30), (31, 17), (64, 48), (40, 96)]
FRACTIONS = [0.0, 0.01, 0.05, 0.1, 0.2, 1 / 3, 0.5, 0.7, 0.9, 1.0]


def random_cases(count: int, seed: int, ties: bool):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    for i in range(count):
        shape = SHAPES[i % len(SHAPES)] if i < 2 * len(SHAPES) else (rng.randint(1, 40), rng.randint(1, 40))
        p = rng.choice(FRACTIONS) if rng.random() < 0.5 else rng.random()
        q = p if i % 2 == 0 else (rng.choice(FRACTIONS) if rng.random() < 0.5 else rng.random())
        if ties:
            u, pr, fa = (torch.randint(0, 4, shape, generator=gen).double() for _ in range(3))
        else:
            u, pr, fa = (torch.rand(shape, generator=gen, dtype=torch.float64) for _ in range(3))
        yield shape, p, q, u, pr, fa


def tie_free(*scores: torch.Tensor) -> bool:
    return all(s.flatten().unique().numel() == s.numel() for s in scores)


def test_official_equals_the_release_oracle_on_240_tie_free_cases():
    mismatches, cases, nonempty, old_differs, p_not_q = 0, 0, 0, 0, 0
    for shape, p, q, u, pr, fa in random_cases(240, seed=15, ties=False):
        assert tie_free(u, pr, fa)
        got = select_mask(u, pr, fa, p, q, mode="official", counting="release")
        assert got.shape == shape and got.dtype == torch.bool
        expected = official_oracle(u, pr, fa, p, q)
        mismatches += as_set(got) != expected
        cases, nonempty, p_not_q = cases + 1, nonempty + bool(expected), p_not_q + (p != q)
        old_differs += score_order_pairing(u, pr, fa, p, q) != expected
    assert (cases, mismatches) == (240, 0)
    assert nonempty > 100 and p_not_q > 100 and old_differs > 20  # the cases are not trivial and catch the bug


def test_official_with_floor_counting_equals_the_oracle_with_floor_counting():
    for shape, p, q, u, pr, fa in random_cases(120, seed=16, ties=False):
        got = select_mask(u, pr, fa, p, q, mode="official")  # default counting: floor(p * N)
        assert as_set(got) == official_oracle(u, pr, fa, p, q, counting="floor"), (shape, p, q)


def test_official_with_ties_follows_the_lower_index_first_rule():
    for shape, p, q, u, pr, fa in random_cases(200, seed=17, ties=True):
        got = select_mask(u, pr, fa, p, q, mode="official", counting="release")
        assert as_set(got) == official_oracle(u, pr, fa, p, q), (shape, p, q)


@pytest.mark.parametrize("ties", [False, True])
def test_set_mode_equals_plain_python_sets(ties):
    for shape, p, q, u, pr, fa in random_cases(200, seed=18 + ties, ties=ties):
        for counting in ("floor", "release"):
            got = select_mask(u, pr, fa, p, q, mode="set", counting=counting)
            assert as_set(got) == set_oracle(u, pr, fa, p, q, counting), (shape, p, q, counting)


def test_release_steps_with_torch_ops_agree_on_tie_free_cases():
    """A second oracle closer to the release's own operations (topk, unique, isin), tie-free cases only."""
    for shape, p, q, u, pr, fa in random_cases(200, seed=20, ties=False):
        k_u, k = release_count(p, shape), release_count(q, shape)
        g = torch.unique(torch.topk(u.flatten(), k_u).indices)
        pl, fl = (torch.unique(torch.topk(s.flatten(), k).indices) for s in (pr, fa))
        both_outside = ~torch.isin(pl, g) & ~torch.isin(fl, g)
        expected = torch.zeros(u.numel(), dtype=torch.bool)
        expected[pl[both_outside]] = True
        assert torch.equal(select_mask(u, pr, fa, p, q, "official", counting="release"), expected.reshape(shape))


# ------------------------------------------------------------------------------------------------ by hand


def test_a_2x3_matrix_worked_out_by_hand():
    # p = 0.2: int(0.2 * 3 * 2) = int(1.2000000000000002) = 1; q = 0.5: int(0.5 * 3 * 2) = 3.
    # flat index:     0    1    2    3    4    5
    u = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.4, 0.5]])  # G = {3}
    pr = torch.tensor([[0.5, 0.6, 0.1], [0.2, 0.3, 0.7]])  # top 3 = {5, 1, 0}; by index 0 1 5
    fa = torch.tensor([[0.1, 0.2, 0.7], [0.9, 0.3, 0.8]])  # top 3 = {3, 5, 2}; by index 2 3 5
    # release, by index:  (0, 2) both outside G -> zero 0;  (1, 3) 3 in G;  (5, 5) both outside -> zero 5
    # set mode: P \ G = {0, 1, 5}, F \ G = {2, 5}, P ∩ F = {5}
    # the old score-order pairing: (5, 3) 3 in G; (1, 5) -> 1; (0, 2) -> 0: it zeroed {0, 1}
    assert select_mask(u, pr, fa, 0.2, 0.5, "official").tolist() == [[True, False, False], [False, False, True]]
    assert select_mask(u, pr, fa, 0.2, 0.5, "set").tolist() == [[False, False, False], [False, False, True]]
    assert score_order_pairing(u, pr, fa, 0.2, 0.5) == {0, 1}


def test_a_1x4_matrix_with_p_equal_q_worked_out_by_hand():
    # p = q = 0.5: k = int(0.5 * 4 * 1) = 2
    u = torch.tensor([[0.9, 0.1, 0.2, 0.3]])  # G = {0, 3}
    pr = torch.tensor([[0.1, 0.8, 0.9, 0.2]])  # top 2 = {2, 1}; by index 1 2
    fa = torch.tensor([[0.1, 0.9, 0.2, 0.8]])  # top 2 = {1, 3}; by index 1 3
    # release: (1, 1) both outside -> zero 1; (2, 3) 3 in G.  Set: {1, 2} ∩ {1} = {1}.
    # score-order pairing: (2, 1) -> zero 2, a weight that matters for privacy only; (1, 3) 3 in G
    assert select_mask(u, pr, fa, 0.5, 0.5, "official").tolist() == [[False, True, False, False]]
    assert select_mask(u, pr, fa, 0.5, 0.5, "set").tolist() == [[False, True, False, False]]
    assert score_order_pairing(u, pr, fa, 0.5, 0.5) == {2}


def test_a_tie_at_the_cut_takes_the_lower_index():
    # all utility scores equal: G = top 1 = {0} by the rule (torch.topk may pick any)
    u = torch.ones(1, 4)
    pr = torch.tensor([[0.9, 0.8, 0.1, 0.2]])  # top 2 = {0, 1}
    fa = torch.tensor([[0.9, 0.1, 0.8, 0.2]])  # top 2 = {0, 2}
    # official (p = 0.25 -> 1, q = 0.5 -> 2): (0, 0) 0 in G; (1, 2) both outside -> zero 1
    assert select_mask(u, pr, fa, 0.25, 0.5, "official").tolist() == [[False, True, False, False]]
    assert select_mask(u, pr, fa, 0.25, 0.5, "set").tolist() == [[False, False, False, False]]


def test_release_counting_differs_from_floor_where_the_product_rounds():
    assert (release_count(0.7, (3, 30)), top_count(0.7, 90)) == (63, 62)  # 0.7*30*3 = 63.0, 0.7*90 = 62.99..
    assert (release_count(1 / 3, (3, 7)), top_count(1 / 3, 21)) == (6, 7)
    assert release_count(5e-7, (1536, 576)) == 0 and release_count(1e-4, (1536, 576)) == 88


# ------------------------------------------------------------------------------------------------ contract


def test_select_mask_refuses_bad_inputs():
    a = torch.rand(2, 3)
    with pytest.raises(ValueError, match="one shape on one device"):
        select_mask(a, a, torch.rand(3, 2), 0.1, 0.1)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        select_mask(a, a, a, 1.5, 0.1)
    with pytest.raises(ValueError, match="mode must be one of set, official"):
        select_mask(a, a, a, 0.1, 0.1, mode="union")
    with pytest.raises(ValueError, match="the privacy scores contain NaN"):
        select_mask(a, torch.full((2, 3), float("nan")), a, 0.1, 0.1)


def test_select_mask_keeps_the_scores_device_and_agrees_across_devices():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gen = torch.Generator().manual_seed(3)
    u, pr, fa = (torch.rand(64, 48, generator=gen) for _ in range(3))
    reference = select_mask(u, pr, fa, 0.05, 0.05, "official")
    for device in devices:
        got = select_mask(u.to(device), pr.to(device), fa.to(device), 0.05, 0.05, "official")
        assert got.device.type == device and torch.equal(got.cpu(), reference)
