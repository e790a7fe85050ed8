"""Paired significance tests between a variant and its base model on the same items, and FDR control.

Methods:

* :func:`mcnemar`: exact McNemar test (McNemar 1947; the "exact" variant of ``statsmodels``' ``mcnemar``) for
  per-item binary outcomes. Only the discordant pairs carry information: b = items right in the base run and wrong
  in the variant, c = the reverse. Under H0 (same rate) b ~ Binomial(b + c, 1/2); the two-sided p-value is
  ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` = min(1, 2 P(X <= min(b, c))), and 1 when b + c = 0.
* :func:`paired_bootstrap`: percentile bootstrap of the paired difference statistic(variant) - statistic(base)
  (Efron & Tibshirani 1993, ch. 13 and 16): item indices are resampled with replacement *jointly* for both runs,
  so the pairing is kept. Two-sided p-value (the bootstrap-percentile inversion, the smallest alpha for which
  the equal-tailed percentile interval excludes 0)::

      p = min(1, max(2 * min(#{d* <= 0}, #{d* >= 0}) / B', 1 / (B' + 1)))

  over the B' resamples where both statistics are defined (resamples giving NaN are dropped and counted in
  ``n_dropped``). A variant equal to its base gives p = 1; p never reaches 0 with finitely many resamples.
* :func:`paired_permutation`: paired (sign-flip) permutation test, the ``permutation_type="samples"`` case of
  ``scipy.stats.permutation_test``: each item's base and variant values are swapped at random. Exact enumeration
  of all 2^n swaps when 2^n <= ``n_permutations``, else ``n_permutations`` random ones. Two-sided p-value as in
  scipy: p = min(1, 2 min(P(T* <= t), P(T* >= t))) with P = k / 2^n (exact) or (k + 1) / (B' + 1) (random),
  comparisons with scipy's relative tolerance of 1e-14.
* :func:`benjamini_hochberg`: Benjamini-Hochberg (1995) adjusted p-values (q-values) via
  ``scipy.stats.false_discovery_control``, with missing p-values passed through.

Pure numpy/scipy: no torch, no lm_eval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Statistic = Callable[[list[Any]], float]
N_RESAMPLES = 2000
CONFIDENCE = 0.95
TOLERANCE = 1e-14  # relative, as scipy.stats.permutation_test


@dataclass(frozen=True)
class TestResult:
    """One paired test: ``delta`` = variant - base of the statistic, with its interval when the test gives one."""

    __test__ = False  # not a pytest test class

    test: str  # "mcnemar-exact" | "paired-bootstrap" | "paired-permutation"
    p_value: float  # two-sided; NaN when the statistic is undefined on the observed items
    delta: float
    ci_low: float | None
    ci_high: float | None
    n: int  # paired items (or resampling units) used
    base_value: float | None = None  # the statistic on the base run's items
    variant_value: float | None = None
    b: int | None = None  # McNemar: base true, variant false
    c: int | None = None  # McNemar: base false, variant true
    n_resamples: int | None = None  # resamples / permutations that gave a defined delta
    n_dropped: int = 0  # resamples / permutations dropped because a statistic was NaN


# --- validation --------------------------------------------------------------------------------------------------
def _check_paired(base: Sequence[Any], variant: Sequence[Any]) -> int:
    if len(base) != len(variant):
        raise ValueError(f"paired samples differ in length: base {len(base)}, variant {len(variant)}")
    if len(base) == 0:
        raise ValueError("paired samples are empty: no items to test")
    return len(base)


def _as_bools(values: Sequence[Any], name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: McNemar needs a flat sequence of booleans (or 0/1), got {list(values)[:5]}...")
    return arr.astype(bool)


def _check_count(value: int, name: str) -> None:
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


# --- McNemar -----------------------------------------------------------------------------------------------------
def mcnemar(base: Sequence[bool], variant: Sequence[bool]) -> TestResult:
    """Exact two-sided McNemar test; ``delta`` = rate(variant) - rate(base) = (c - b) / n.

    >>> r = mcnemar([True] * 3 + [False] * 6, [False] + [True] * 8)  # b = 1, c = 6
    >>> (r.b, r.c, r.p_value)
    (1, 6, 0.125)
    """
    n = _check_paired(base, variant)
    x, y = _as_bools(base, "base"), _as_bools(variant, "variant")
    b, c = int(np.sum(x & ~y)), int(np.sum(~x & y))
    from scipy.stats import binomtest

    p = float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return TestResult("mcnemar-exact", min(p, 1.0), (c - b) / n, None, None, n,
                      float(x.mean()), float(y.mean()), b, c)


# --- resampling helpers ------------------------------------------------------------------------------------------
def _value(statistic: Statistic, items: list[Any]) -> float:
    value = statistic(items)
    return float("nan") if value is None else float(value)


def _deltas(base: Sequence[Any], variant: Sequence[Any], statistic: Statistic,
            rows: np.ndarray, swap: bool) -> np.ndarray:
    """statistic(variant*) - statistic(base*) per row: indices to take (bootstrap) or swap flags (permutation)."""
    out = np.empty(len(rows))
    for r, row in enumerate(rows):
        if swap:
            b_items = [v if s else b for b, v, s in zip(base, variant, row)]
            v_items = [b if s else v for b, v, s in zip(base, variant, row)]
        else:
            b_items, v_items = [base[i] for i in row], [variant[i] for i in row]
        out[r] = _value(statistic, v_items) - _value(statistic, b_items)
    return out


def _tail_counts(deltas: np.ndarray, observed: float) -> tuple[int, int]:
    """(#{d <= observed}, #{d >= observed}) with scipy's relative tolerance."""
    gamma = abs(TOLERANCE * observed)
    return int(np.sum(deltas <= observed + gamma)), int(np.sum(deltas >= observed - gamma))


def _observed(base: Sequence[Any], variant: Sequence[Any], statistic: Statistic) -> tuple[float, float, float]:
    b, v = _value(statistic, list(base)), _value(statistic, list(variant))
    return b, v, v - b


# --- paired bootstrap --------------------------------------------------------------------------------------------
def bootstrap_p_value(deltas: np.ndarray) -> float:
    """Two-sided percentile-inversion p-value of H0: delta = 0 from defined bootstrap deltas (see module doc)."""
    if deltas.size == 0:
        return float("nan")
    low, high = _tail_counts(deltas, 0.0)
    return min(1.0, max(2.0 * min(low, high) / deltas.size, 1.0 / (deltas.size + 1)))


def paired_bootstrap(base_items: Sequence[Any], variant_items: Sequence[Any], statistic: Statistic,
                     n_resamples: int = N_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE) -> TestResult:
    """Paired percentile bootstrap of statistic(variant) - statistic(base); items resampled jointly (same indices).

    ``statistic`` takes a list of items (any objects) and returns a float (NaN or None when undefined).
    """
    n = _check_paired(base_items, variant_items)
    _check_count(n_resamples, "n_resamples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    b, v, delta = _observed(base_items, variant_items, statistic)
    rows = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    deltas = _deltas(base_items, variant_items, statistic, rows, swap=False)
    kept = deltas[~np.isnan(deltas)]
    low, high = _percentiles(kept, confidence)
    p = bootstrap_p_value(kept) if not math.isnan(delta) else float("nan")
    return TestResult("paired-bootstrap", p, delta, low, high, n, b, v, n_resamples=int(kept.size),
                      n_dropped=int(n_resamples - kept.size))


def _percentiles(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    if deltas.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --- paired permutation ------------------------------------------------------------------------------------------
def _swap_rows(n: int, n_permutations: int, seed: int) -> tuple[np.ndarray, bool]:
    """All 2^n swap patterns when they fit in ``n_permutations`` (exact), else random ones."""
    if n < 63 and 2 ** n <= n_permutations:
        return np.array(list(itertools.product((False, True), repeat=n)), dtype=bool), True
    return np.random.default_rng(seed).integers(0, 2, size=(n_permutations, n)).astype(bool), False


def paired_permutation(base_items: Sequence[Any], variant_items: Sequence[Any], statistic: Statistic,
                       n_permutations: int = N_RESAMPLES, seed: int = 0) -> TestResult:
    """Paired permutation test of statistic(variant) - statistic(base): base/variant swapped per item at random."""
    n = _check_paired(base_items, variant_items)
    _check_count(n_permutations, "n_permutations")
    b, v, delta = _observed(base_items, variant_items, statistic)
    rows, exact = _swap_rows(n, n_permutations, seed)
    deltas = _deltas(base_items, variant_items, statistic, rows, swap=True)
    kept = deltas[~np.isnan(deltas)]
    p = _permutation_p_value(kept, delta, exact)
    return TestResult("paired-permutation" + ("-exact" if exact else ""), p, delta, None, None, n, b, v,
                      n_resamples=int(kept.size), n_dropped=int(len(rows) - kept.size))


def _permutation_p_value(deltas: np.ndarray, observed: float, exact: bool) -> float:
    if deltas.size == 0 or math.isnan(observed):
        return float("nan")
    low, high = _tail_counts(deltas, observed)
    adjust = 0 if exact else 1
    return min(1.0, 2.0 * (min(low, high) + adjust) / (deltas.size + adjust))


# --- multiple testing --------------------------------------------------------------------------------------------
def _missing(p: float | None) -> bool:
    return p is None or math.isnan(p)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values; None and NaN entries are passed through and do not count in m.

    >>> [round(q, 4) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.2])]
    [0.04, 0.0533, 0.0533, 0.2]
    """
    present = [i for i, p in enumerate(p_values) if not _missing(p)]
    bad = [p_values[i] for i in present if not 0.0 <= float(p_values[i]) <= 1.0]  # type: ignore[arg-type]
    if bad:
        raise ValueError(f"p-values must lie in [0, 1], got {bad}")
    out: list[float | None] = list(p_values)
    if present:
        from scipy.stats import false_discovery_control

        q = false_discovery_control([float(p_values[i]) for i in present], method="bh")  # type: ignore[arg-type]
        for i, value in zip(present, np.atleast_1d(q)):
            out[i] = float(value)
    return out
