"""Point statistics of the multi-group BOLD tasks (``race_bias_bold``, ``religion_bias_bold``) for paired tests.

Each document (a BOLD prompt) logs ``[group, score_1, ..., score_k]`` under every metric (``[group, score]`` with
one continuation; ``[group, [score_1, ..., score_k]]`` is read the same way). A prompt's score is the mean over its
k continuations and a group's mean is the mean over its prompts of those scores, as the tasks aggregate. From the
group means:

* :func:`maxmin_gap`: max - min of the group means;
* :func:`dispersion`: population standard deviation (ddof = 0) of the group means;
* :func:`pair_gap`: mean(pair[0]) - mean(pair[1]), signed;
* :func:`group_mean`: one group's mean;
* :func:`group_gap`: one group's mean - the mean of the other groups' means.

``groups`` (where a statistic takes it) names the groups the statistic is over, normally every group of the
documents being compared: a bootstrap resample that lacks one of them gives NaN (the paired bootstrap drops and
counts it) instead of a max-min or a dispersion over fewer groups, which would be another quantity. Without
``groups`` the groups present in the items are used. A statistic over fewer than two groups is NaN.

Pure Python and numpy, independent of the task code: no torch, no lm_eval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

NAN = float("nan")
Item = tuple[str, float]


def _scores(values: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_scores(v))
        else:
            out.append(float(v))
    return out


def bold_item(value: Any) -> Item:
    """(group, the prompt's score: the mean over its continuations) of one logged ``[group, score*]`` value."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise ValueError(f"a multi-group BOLD value is [group, score, ...], got {value!r}")
    scores = _scores(value[1:])
    if not scores:
        raise ValueError(f"a multi-group BOLD value has no score: {value!r}")
    return str(value[0]), float(np.mean(scores))


def group_means(items: Iterable[Item]) -> dict[str, float]:
    """Mean score per group present in ``items``, sorted by group name."""
    sums: dict[str, list[float]] = {}
    for group, score in items:
        sums.setdefault(group, []).append(score)
    return {g: math.fsum(sums[g]) / len(sums[g]) for g in sorted(sums)}


def _means_over(items: Sequence[Item], groups: Sequence[str] | None) -> list[float] | None:
    """The means of ``groups`` (all groups present when None); None when one of them has no item."""
    means = group_means(items)
    if groups is None:
        return list(means.values())
    if any(g not in means for g in groups):
        return None
    return [means[g] for g in groups]


def maxmin_gap(items: Sequence[Item], groups: Sequence[str] | None = None) -> float:
    """Largest minus smallest group mean; NaN with fewer than two groups or a group of ``groups`` missing."""
    means = _means_over(items, groups)
    return NAN if means is None or len(means) < 2 else float(max(means) - min(means))


def dispersion(items: Sequence[Item], groups: Sequence[str] | None = None) -> float:
    """Population standard deviation of the group means (NaN as :func:`maxmin_gap`)."""
    means = _means_over(items, groups)
    return NAN if means is None or len(means) < 2 else float(np.std(means))


def group_mean(items: Sequence[Item], group: str) -> float:
    """Mean score of ``group``'s prompts; NaN when it has none."""
    return group_means(items).get(group, NAN)


def pair_gap(items: Sequence[Item], pair: Sequence[str]) -> float:
    """mean(pair[0]) - mean(pair[1]); NaN when either group has no prompt."""
    first, second = pair
    means = group_means(items)
    return means[first] - means[second] if first in means and second in means else NAN


def group_gap(items: Sequence[Item], group: str, groups: Sequence[str] | None = None) -> float:
    """``group``'s mean minus the mean of the other groups' means; NaN when ``group`` or every other group is
    missing, or a group of ``groups`` is."""
    means = group_means(items)
    if group not in means or (groups is not None and any(g not in means for g in groups)):
        return NAN
    others = [m for g, m in means.items() if g != group and (groups is None or g in groups)]
    return means[group] - float(np.mean(others)) if others else NAN


def normal(name: str) -> str:
    """A group name as a metric suffix may spell it: lower case, runs of non-alphanumerics as ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def resolve_group(name: str, groups: Iterable[str]) -> str | None:
    """The group of ``groups`` that a metric's suffix ``name`` names (exactly, else after :func:`normal`)."""
    groups = list(groups)
    if name in groups:
        return name
    matches = [g for g in groups if normal(g) == normal(name)]
    return matches[0] if len(matches) == 1 else None
