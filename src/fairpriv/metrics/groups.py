"""Multi-group bias kernels: per-group means, max-min gap, each group's gap to the others, dispersion, a named
pair's signed gap, all with one stratified bootstrap.

Used by the race and religion tasks (``race_bias_bold``, ``religion_bias_bold``; DP-bias paper, arXiv 2402.04489,
which reports gender, racial and religious bias), where a score (toxicity, VADER sentiment) is given per prompt and
every prompt belongs to one of three or more groups (BOLD's race or religious-ideology groups). Pure functions of
plain numbers: no lm-eval, no model.

Definitions (``m_g`` = mean over the prompts of group ``g`` of per-prompt values; a prompt with k sampled
continuations has the mean of its k scores as its value, so every prompt weighs the same):

- ``group_means``: ``{g: m_g}``.
- ``maxmin_gap`` = max_g m_g - min_g m_g (>= 0; the range of the group means).
- ``gaps_to_others``: ``{g: m_g - mean_{h != g} m_h}``, the mean of the *other groups' means* (each group weighs the
  same, however many prompts it has). Positive = the group scores higher than the rest.
- ``dispersion`` = population standard deviation (``ddof=0``) of the group means.
- ``pair_gap(a, b)`` = m_a - m_b (signed: positive when group ``a`` scores higher).

Uncertainty: a stratified percentile bootstrap (seed :data:`fairpriv.metrics.stats.SEED`, 2,000 resamples, 95%):
prompts are resampled within each group (group sizes stay fixed, as in the two-group gaps of
:mod:`fairpriv.metrics.gender`), the group means of each resample are computed once, and every statistic above is
evaluated on the same resampled means, so the intervals of one estimate are jointly consistent. A group whose
values are all equal (e.g. a group of one prompt) keeps its exact mean in every resample. Note that max-min gaps and
dispersions are biased upwards on small groups (both are >= 0 and grow with noise), and so are their bootstrap
replicates: their percentile interval can lie above the point estimate when the groups' means are close.

Errors: a group with no prompt raises ``ValueError`` naming the group; a named pair whose group is missing, or fewer
than two groups, raise ``ValueError`` too. A group of one prompt is fine (its resampled mean is constant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from fairpriv.metrics.divergence import Estimate
from fairpriv.metrics.stats import CONFIDENCE, N_RESAMPLES, SEED, percentile_interval

Scores = Sequence[Union[float, Sequence[float]]]  # one entry per prompt: a score, or its k continuations' scores


# --- per-prompt values and group means ---------------------------------------------------------------------------
def prompt_values(scores: Scores, group: str) -> np.ndarray:
    """One value per prompt of ``group``: the score, or the mean of its continuations' scores.

    >>> prompt_values([0.5, [0.0, 1.0]], "islam").tolist()
    [0.5, 0.5]
    """
    if len(scores) == 0:
        raise ValueError(f"group {group!r} has no prompts: every group needs at least one scored prompt")
    values = []
    for i, item in enumerate(scores):
        arr = np.atleast_1d(np.asarray(item, dtype=np.float64)).ravel()
        if arr.size == 0 or np.isnan(arr).any():
            raise ValueError(f"group {group!r}: prompt {i} has no score or a NaN score")
        values.append(arr.mean())
    return np.array(values)


def as_groups(groups: Mapping[str, Scores]) -> dict[str, np.ndarray]:
    """``{group: per-prompt values}``, checked (every group non-empty, no NaN)."""
    if not groups:
        raise ValueError("no groups given")
    return {str(g): prompt_values(v, str(g)) for g, v in groups.items()}


def group_means(groups: Mapping[str, Scores]) -> dict[str, float]:
    """Mean per-prompt value of each group.

    >>> group_means({"a": [0.0, 1.0], "b": [[0.2, 0.4]]})
    {'a': 0.5, 'b': 0.30000000000000004}
    """
    return {g: float(v.mean()) for g, v in as_groups(groups).items()}


def _at_least_two(means: Mapping[str, float], what: str) -> None:
    if len(means) < 2:
        raise ValueError(f"{what} needs at least two groups, got {sorted(means)}")


def maxmin_gap(means: Mapping[str, float]) -> float:
    """Largest group mean minus smallest.

    >>> maxmin_gap({"a": 0.1, "b": 0.4, "c": 0.25})
    0.30000000000000004
    """
    _at_least_two(means, "a max-min gap")
    return float(max(means.values()) - min(means.values()))


def dispersion(means: Mapping[str, float]) -> float:
    """Population standard deviation (ddof = 0) of the group means.

    >>> dispersion({"a": 0.0, "b": 1.0})
    0.5
    """
    _at_least_two(means, "a dispersion")
    return float(np.std(np.fromiter(means.values(), dtype=np.float64)))


def gaps_to_others(means: Mapping[str, float]) -> dict[str, float]:
    """Each group's mean minus the (unweighted) mean of the other groups' means.

    >>> gaps_to_others({"a": 0.0, "b": 0.5, "c": 1.0})
    {'a': -0.75, 'b': 0.0, 'c': 0.75}
    """
    _at_least_two(means, "a gap to the other groups")
    total, k = sum(means.values()), len(means)
    return {g: float(m - (total - m) / (k - 1)) for g, m in means.items()}


def check_pair(pair: Sequence[str], groups: Sequence[str]) -> tuple[str, str]:
    """``pair`` as a tuple of two different groups that are among ``groups``."""
    if isinstance(pair, str) or len(pair) != 2 or pair[0] == pair[1]:
        raise ValueError(f"a pair is two different group names, got {pair!r}")
    missing = [g for g in pair if g not in groups]
    if missing:
        raise ValueError(f"pair group {missing[0]!r} has no prompts here; groups with prompts: {sorted(groups)}")
    return str(pair[0]), str(pair[1])


def pair_gap(means: Mapping[str, float], pair: Sequence[str]) -> float:
    """Signed gap mean(pair[0]) - mean(pair[1]).

    >>> pair_gap({"islam": 0.2, "christianity": 0.05}, ["islam", "christianity"])
    0.15000000000000002
    """
    a, b = check_pair(pair, list(means))
    return float(means[a] - means[b])


# --- the bootstrap -----------------------------------------------------------------------------------------------
def stratified_group_means(values: Mapping[str, np.ndarray], seed: int = SEED,
                           n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """[n_resamples, groups] group means of prompts resampled with replacement within each group (groups in the
    mapping's order, drawn in that order from one ``numpy.random.default_rng(seed)``). A group whose values are all
    equal keeps its exact mean in every resample (no draw is made for it)."""
    rng = np.random.default_rng(seed)
    columns = []
    for v in values.values():
        if np.ptp(v) == 0:
            columns.append(np.full(n_resamples, float(v[0])))
            continue
        weights = rng.multinomial(v.size, np.full(v.size, 1.0 / v.size), size=n_resamples).astype(np.float64)
        columns.append(weights @ v / v.size)
    return np.stack(columns, axis=1)


def _estimate(value: float, replicates: np.ndarray, n: int, confidence: float) -> Estimate:
    low, high = percentile_interval(replicates, confidence)
    return Estimate(float(value), low, high, int(n))


# --- results -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MultiGroupEstimate:
    """Every multi-group statistic with its stratified bootstrap interval (``Estimate``: value, ci_low, ci_high,
    n = prompts used). ``pair_gap`` is None when no pair was asked for."""

    groups: tuple[str, ...]
    sizes: Mapping[str, int]
    means: Mapping[str, Estimate]
    gaps: Mapping[str, Estimate]
    maxmin_gap: Estimate
    dispersion: Estimate
    pair: tuple[str, str] | None = None
    pair_gap: Estimate | None = None


def multigroup_estimate(groups: Mapping[str, Scores], pair: Sequence[str] | None = None, seed: int = SEED,
                        n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE) -> MultiGroupEstimate:
    """All statistics of the module on ``{group: per-prompt scores}`` (two or more groups, each non-empty), with
    intervals from one stratified bootstrap; ``pair`` (two of the groups) adds the signed pair gap.

    >>> e = multigroup_estimate({"a": [0.1], "b": [0.3], "c": [0.5, 0.5]}, pair=("c", "a"))
    >>> round(e.maxmin_gap.value, 6), round(e.pair_gap.value, 6), e.pair_gap.ci_low == e.pair_gap.value
    (0.4, 0.4, True)
    """
    values = as_groups(groups)
    names = tuple(values)
    if len(names) < 2:
        raise ValueError(f"multi-group statistics need at least two groups, got {list(names)}")
    checked = check_pair(pair, names) if pair is not None else None
    sizes = {g: int(v.size) for g, v in values.items()}
    n = sum(sizes.values())
    point = np.array([v.mean() for v in values.values()])
    boot = stratified_group_means(values, seed, n_resamples)           # [resamples, groups]
    k = len(names)
    others = (boot.sum(axis=1, keepdims=True) - boot) / (k - 1)
    point_others = (point.sum() - point) / (k - 1)
    means = {g: _estimate(point[i], boot[:, i], sizes[g], confidence) for i, g in enumerate(names)}
    gaps = {g: _estimate(point[i] - point_others[i], boot[:, i] - others[:, i], n, confidence)
            for i, g in enumerate(names)}
    maxmin = _estimate(point.max() - point.min(), boot.max(axis=1) - boot.min(axis=1), n, confidence)
    spread = _estimate(point.std(), boot.std(axis=1), n, confidence)
    pair_estimate = None
    if checked:
        i, j = names.index(checked[0]), names.index(checked[1])
        pair_estimate = _estimate(point[i] - point[j], boot[:, i] - boot[:, j], sizes[checked[0]] + sizes[checked[1]],
                                  confidence)
    return MultiGroupEstimate(names, sizes, means, gaps, maxmin, spread, checked, pair_estimate)
