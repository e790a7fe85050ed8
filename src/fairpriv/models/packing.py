"""Plans for scoring log-likelihood requests with shared contexts computed once (pure Python, no torch).

A request is ``(context_tokens, continuation_tokens)``; lm-eval's HFLM feeds ``(context + continuation)[:-1]`` to the
model and reads the continuation's log-probabilities from the last ``len(continuation)`` positions. Requests whose
context is the same token list (the options of one multiple-choice question) are packed into one *row*:

    context | continuation_1[:-1] | continuation_2[:-1] | ...

with position ids that restart after the context for each continuation and an attention rule that lets a
continuation's tokens see the context and their own earlier tokens only (:func:`allowed`). Every continuation token
is then conditioned on exactly what HFLM conditions it on, and the context is computed once instead of once per
option. The first token of every continuation is predicted at the context's last position.

Requests that share nothing, a context shorter than :data:`MIN_SHARED` tokens, or that HFLM would truncate get a row
of their own (HFLM's input, truncated from the left as HFLM does). Rows are sorted by length, longest first, so a
batch pads little; :func:`logit_positions` says which positions of a row carry each request's predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

MIN_SHARED = 2  # a context must be at least this many tokens long to be shared (one token saves nothing)


@dataclass
class Row:
    """One model input: ``tokens`` with ``positions``; ``segments`` holds (request index, start, length) of each
    continuation's input part (``start`` is where its tokens begin in the row); ``context`` is the shared context's
    length (0 for a row of one unpacked request, whose continuation is the row's last ``n_cont`` predictions)."""

    tokens: list[int]
    positions: list[int]
    context: int = 0
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    single: tuple[int, int] | None = None  # unpacked: (request index, continuation length)

    @property
    def packed(self) -> bool:
        return self.single is None


def plan_rows(requests: Sequence[tuple[Sequence[int], Sequence[int]]], max_length: int) -> list[Row]:
    """Rows for ``requests`` (context, continuation token lists), longest first (ties: first request first)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    rows: list[Row] = []
    for i, (ctx, cont) in enumerate(requests):
        if not cont or not ctx:
            raise ValueError(f"request {i}: empty context or continuation (lm-eval always gives both)")
        if len(ctx) < MIN_SHARED or len(ctx) + len(cont) > max_length + 1:
            rows.append(single_row(i, ctx, cont, max_length))
        else:
            groups.setdefault(tuple(ctx), []).append(i)
    for ctx, members in groups.items():
        rows += group_rows(list(ctx), members, requests, max_length)
    order = sorted(range(len(rows)), key=lambda r: (-len(rows[r].tokens), first_request(rows[r])))
    return [rows[r] for r in order]


def single_row(index: int, ctx: Sequence[int], cont: Sequence[int], max_length: int) -> Row:
    """HFLM's input for one request: ``(ctx + cont)[-(max_length + 1):][:-1]``."""
    tokens = (list(ctx) + list(cont))[-(max_length + 1):][:-1]
    return Row(tokens, list(range(len(tokens))), single=(index, len(cont)))


def group_rows(ctx: list[int], members: list[int], requests, max_length: int) -> list[Row]:
    """The requests sharing ``ctx``, packed into as few rows of at most ``max_length`` tokens as fit, in order."""
    if len(members) == 1:
        return [single_row(members[0], ctx, requests[members[0]][1], max_length)]
    rows = [new_group_row(ctx)]
    for i in members:
        part = list(requests[i][1])[:-1]
        if len(rows[-1].tokens) + len(part) > max_length:
            rows.append(new_group_row(ctx))
        row = rows[-1]
        row.segments.append((i, len(row.tokens), len(part)))
        row.tokens += part
        row.positions += range(len(ctx), len(ctx) + len(part))
    return rows


def new_group_row(ctx: list[int]) -> Row:
    return Row(list(ctx), list(range(len(ctx))), context=len(ctx))


def first_request(row: Row) -> int:
    return row.single[0] if row.single else row.segments[0][0]


def mask_spec(row: Row, length: int) -> tuple[int, list[int]]:
    """``(shared, segment)`` for the row padded to ``length``: position ``query`` may attend to ``key`` when
    ``key <= query`` and (``key < shared`` or ``segment[key] == segment[query]``). Context positions are segment -1,
    padding -2 (it sees the context and earlier padding: defined, never read); an unpacked row shares everything."""
    if not row.packed:
        return length, [0] * length
    segment = [-1] * row.context + [-2] * (length - row.context)
    for number, (_, start, size) in enumerate(row.segments):
        segment[start:start + size] = [number] * size
    return row.context, segment


def allowed(row: Row, query: int, key: int, length: int | None = None) -> bool:
    """Whether position ``query`` of ``row`` may attend to position ``key`` (causal; a continuation sees the context
    and its own segment only)."""
    shared, segment = mask_spec(row, length or len(row.tokens))
    return key <= query and (key < shared or segment[key] == segment[query])


def logit_positions(row: Row, n_cont: Sequence[int] | None = None) -> list[tuple[int, list[int]]]:
    """``(request index, positions)``: the row positions whose next-token predictions score each request's
    continuation tokens, in order (``n_cont``: continuation lengths by request index, needed for packed rows)."""
    if not row.packed:
        index, length = row.single
        end = len(row.tokens)
        return [(index, list(range(end - length, end)))]
    out = []
    for index, start, length in row.segments:
        assert n_cont is None or n_cont[index] == length + 1
        out.append((index, [row.context - 1] + list(range(start, start + length))))
    return out


def batches(rows: list[Row], size: int) -> list[list[Row]]:
    """Consecutive rows, ``size`` at a time (rows are already longest first)."""
    return [rows[i:i + size] for i in range(0, len(rows), size)]
