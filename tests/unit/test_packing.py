"""Plans of shared-context rows (fairpriv.models.packing): pure Python, checked by hand."""

import pytest

from fairpriv.models.packing import allowed, batches, logit_positions, mask_spec, plan_rows


def test_options_of_one_question_share_one_row():
    ctx = [5, 6, 7]
    rows = plan_rows([(ctx, [10, 11, 12]), (ctx, [20, 21]), (ctx, [30])], max_length=100)
    assert len(rows) == 1
    row = rows[0]
    # context | cont1[:-1] | cont2[:-1] | cont3[:-1] (empty)
    assert row.tokens == [5, 6, 7, 10, 11, 20]
    assert row.positions == [0, 1, 2, 3, 4, 3]
    assert row.segments == [(0, 3, 2), (1, 5, 1), (2, 6, 0)]
    # first token of every option is predicted at the context's last position (2)
    assert logit_positions(row, [3, 2, 1]) == [(0, [2, 3, 4]), (1, [2, 5]), (2, [2])]


def test_attention_rule_by_hand():
    ctx = [5, 6, 7]
    row = plan_rows([(ctx, [10, 11, 12]), (ctx, [20, 21, 22])], max_length=100)[0]
    assert row.tokens == [5, 6, 7, 10, 11, 20, 21]
    # option 2's tokens (positions 5, 6) see the context and themselves, never option 1 (3, 4)
    assert [k for k in range(7) if allowed(row, 6, k)] == [0, 1, 2, 5, 6]
    assert [k for k in range(7) if allowed(row, 4, k)] == [0, 1, 2, 3, 4]
    assert [k for k in range(7) if allowed(row, 1, k)] == [0, 1]
    shared, segment = mask_spec(row, 9)  # padded by two
    assert shared == 3 and segment == [-1, -1, -1, 0, 0, 1, 1, -2, -2]


def test_rows_of_their_own_match_hflm_input():
    # different contexts; a one-token context; a request lm-eval would truncate from the left
    requests = [([1, 2], [3, 4]), ([9], [8, 7, 6]), ([1, 2, 3, 4, 5, 6], [7, 8, 9])]
    rows = plan_rows(requests, max_length=6)
    by_request = {row.single[0]: row for row in rows}
    assert by_request[0].tokens == [1, 2, 3] and not by_request[0].packed
    assert by_request[1].tokens == [9, 8, 7]
    assert by_request[2].tokens == [3, 4, 5, 6, 7, 8]  # (ctx + cont)[-7:][:-1]
    assert logit_positions(by_request[2]) == [(2, [3, 4, 5])]
    assert [len(r.tokens) for r in rows] == [6, 3, 3]  # longest first, ties in request order
    assert [r.single[0] for r in rows] == [2, 0, 1]
    assert mask_spec(by_request[0], 4) == (4, [0, 0, 0, 0])  # unpacked rows are plain causal


def test_a_group_too_long_for_one_row_is_split():
    ctx = [1, 2, 3]
    rows = plan_rows([(ctx, [4] * 5), (ctx, [5] * 5), (ctx, [6] * 5)], max_length=12)
    assert [r.tokens for r in rows] == [[1, 2, 3, 4, 4, 4, 4, 5, 5, 5, 5], [1, 2, 3, 6, 6, 6, 6]]
    assert [i for r in rows for i, _, _ in r.segments] == [0, 1, 2]
    assert all(len(r.tokens) <= 12 for r in rows)


def test_every_request_is_scored_once():
    requests = [([1, 2, 3], [4]), ([1, 2, 3], [5, 6]), ([7], [8]), ([1, 2, 3], [9, 9, 9]), ([4, 4], [1])]
    rows = plan_rows(requests, max_length=64)
    seen = sorted(i for row in rows for i, positions in logit_positions(row))
    assert seen == [0, 1, 2, 3, 4]
    for row in rows:
        for i, positions in logit_positions(row):
            assert len(positions) == len(requests[i][1])


def test_batches_and_empty_requests():
    rows = plan_rows([([1, 2], [3]), ([4, 5], [6]), ([7, 8], [9])], max_length=10)
    assert [len(b) for b in batches(rows, 2)] == [2, 1]
    with pytest.raises(ValueError, match="request 0: empty"):
        plan_rows([([], [1])], max_length=10)
