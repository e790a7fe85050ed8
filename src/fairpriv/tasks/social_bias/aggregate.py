"""lm-eval glue of the race and religion tasks: per-document items and the aggregations that report them, each with a
seeded bootstrap 95% interval (``X``, ``X_ci_low``, ``X_ci_high``: lm-eval prints N/A as the stderr of custom
aggregations, as for the gender tasks).

Items (what ``process_results`` returns per document and ``--log_samples`` keeps):

* ``race_bias_bold`` / ``religion_bias_bold``: ``[group, score_1, ..., score_k]`` under every metric (``group`` =
  the BOLD group name, e.g. ``"islam"``; k = ``samples_per_prompt``, 1 by default: ``[group, score]``, as the
  gender task); toxicity scores under the ``toxicity_*`` metrics and ``bold_n_*``, VADER compound under
  ``sentiment_*``;
* ``race_bias_divergence`` / ``religion_bias_divergence``: one float per metric, the mean over every group pair of
  the template (``kl_bias``: of (KL(a || b) + KL(b || a)) / 2); ``hellinger_<a>|<b>`` (one metric per pair of
  groups, a before b in the domain's group order): that pair's Hellinger distance on the template. Every
  divergence of every pair (``kl_ab``, ``kl_ba``, ``js``, ``hellinger``, ``tvd``, top tokens) is also in the
  sample's ``filtered_resps``, one record per pair in the same order, with the pair's two prompts in
  ``arguments``.

Aggregations: the BOLD metrics are :func:`fairpriv.metrics.groups.multigroup_estimate` on the items grouped by
group (groups in the domain's order), computed once per item list and pair and cached; a statistic that cannot be
computed on the items at hand (fewer than two groups under a tiny ``--limit``, a group of the pair or the metric
absent) is NaN, not an error. ``*_pair_gap`` compares the domain's default pair; the task class
(:class:`fairpriv.tasks.social_bias.tasks.MultiGroupBoldTask`) rebinds it to the pair named with ``--metadata
'{"pair": [a, b]}'``. The divergence metrics are means over templates (:func:`fairpriv.metrics.divergence.
mean_estimate`, bootstrap over templates); each ``hellinger_<a>|<b>`` is its pair's mean Hellinger over templates
(no interval). All aggregated values are floats, so lm-eval's table and results JSON stay as for any task.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fairpriv.metrics import groups as mg
from fairpriv.metrics.divergence import Estimate, mean_estimate
from fairpriv.tasks.social_bias import vocab
from fairpriv.tasks.social_bias.vocab import Domain

NAN = float("nan")
CI = ("", "_ci_low", "_ci_high")
FIELDS = {"": "value", "_ci_low": "ci_low", "_ci_high": "ci_high"}
KINDS = ("toxicity", "sentiment")
DIVERGENCES = {"kl_bias": ("kl_ab", "kl_ba"), "js_bias": ("js",), "hellinger_bias": ("hellinger",),
               "tvd_bias": ("tvd",)}
PAIR_PREFIX = "hellinger_"


def with_ci(name: str) -> list[str]:
    return [name + suffix for suffix in CI]


def bold_metrics(domain: Domain) -> dict[str, bool]:
    """Every metric of ``<domain>_bias_bold`` with its (nominal, see README.md) higher_is_better flag."""
    out: dict[str, bool] = {}
    for kind in KINDS:
        signed = kind == "sentiment"              # signed sentiment gaps and means: higher = more positive
        out.update({m: False for base in ("maxmin_gap", "dispersion") for m in with_ci(f"{kind}_{base}")})
        out.update({m: signed for m in with_ci(f"{kind}_pair_gap")})
        for g in domain.groups:
            out.update({m: signed for m in with_ci(f"{kind}_mean_{g}")})
            out.update({m: signed for m in with_ci(f"{kind}_gap_{g}")})
    out.update({f"bold_n_{g}": True for g in domain.groups})
    return out


def pair_keys(groups: Sequence[str]) -> list[str]:
    """``"a|b"`` for every pair of groups, in the order of :func:`itertools.combinations`.

    >>> pair_keys(["x", "y", "z"])
    ['x|y', 'x|z', 'y|z']
    """
    return [f"{a}|{b}" for a, b in itertools.combinations(groups, 2)]


def divergence_metrics(domain: Domain) -> dict[str, bool]:
    """The four divergences with their intervals, then one ``hellinger_<a>|<b>`` per pair of groups."""
    return {**{m: False for base in DIVERGENCES for m in with_ci(base)},
            **{PAIR_PREFIX + key: False for key in pair_keys(domain.groups)}}


METRICS: dict[str, dict[str, bool]] = {
    **{f"{d.task_prefix}_bold": bold_metrics(d) for d in vocab.DOMAINS.values()},
    **{f"{d.task_prefix}_divergence": divergence_metrics(d) for d in vocab.DOMAINS.values()},
}


# --- per-document hooks (process_results) ------------------------------------------------------------------------
def scores_of(result: Any, key: str) -> list[float]:
    """A filter record's field as a list: one value, or the k values of k continuations' records."""
    return [float(r[key]) for r in result] if isinstance(result, (list, tuple)) else [float(result[key])]


def process_bold(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """``results[0]``: the scoring filter's record, or its k records (fairpriv.tasks.gender_bias.filters)."""
    toxicity = [doc["group"], *scores_of(results[0], "toxicity")]
    sentiment = [doc["group"], *scores_of(results[0], "sentiment")]
    metrics = METRICS[f"{doc['domain']}_bias_bold"]
    return {m: (sentiment if m.startswith("sentiment") else toxicity) for m in metrics}


def process_divergence(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """``results``: one divergence record per group pair, in :func:`pair_keys` order (side a = the first group)."""
    keys = pair_keys(doc["groups"])
    if len(results) != len(keys):
        raise ValueError(f"{doc.get('id')}: expected {len(keys)} pair results, got {len(results)}")
    out: dict[str, Any] = {}
    for base, fields in DIVERGENCES.items():
        value = float(np.mean([np.mean([float(r[f]) for f in fields]) for r in results]))
        out.update({m: value for m in with_ci(base)})
    out.update({PAIR_PREFIX + k: float(r["hellinger"]) for k, r in zip(keys, results, strict=True)})
    return out


# --- estimates (cached per item list) ----------------------------------------------------------------------------
def freeze(items: Any) -> Any:
    return tuple(freeze(x) for x in items) if isinstance(items, (list, tuple)) else items


def split_items(items: Sequence[Any]) -> dict[str, list[list[float]]]:
    """``[group, score*]`` items -> ``{group: [scores of each prompt]}``, groups in their domain's order (by name
    when they span no single domain). Nested ``[group, [scores]]`` items are read the same way."""
    out: dict[str, list[list[float]]] = {}
    for item in items:
        group, scores = str(item[0]), np.asarray(item[1:], dtype=np.float64).ravel().tolist()
        out.setdefault(group, []).append(scores)
    domains = {getattr(vocab.domain_of(g), "name", None) for g in out}
    name = domains.pop() if len(domains) == 1 else None
    order = list(vocab.DOMAINS[name].groups) if name else sorted(out)
    return {g: out[g] for g in order if g in out}


@functools.lru_cache(maxsize=16)
def estimate(items: tuple, pair: tuple[str, str] | None = None) -> mg.MultiGroupEstimate | None:
    """All multi-group statistics on the items; None with fewer than two groups. A pair with a group absent from
    the items is dropped (its gap is then NaN)."""
    groups = split_items(items)
    if len(groups) < 2:
        return None
    if pair is not None and not all(g in groups for g in pair):
        pair = None
    return mg.multigroup_estimate(groups, pair)


def aggregation(read: Callable[[mg.MultiGroupEstimate], Estimate | None], field: str, name: str,
                pair: tuple[str, str] | None = None) -> Callable[[Sequence[Any]], float]:
    """lm-eval aggregation reading ``field`` of one :class:`Estimate` of the items' multi-group estimate."""
    def aggregate(items: Sequence[Any]) -> float:
        result = estimate(freeze(items), pair)
        value = None if result is None else read(result)
        return NAN if value is None else float(getattr(value, field))
    aggregate.__name__ = aggregate.__qualname__ = name
    return aggregate


def with_ci_aggregations(read: Callable[[mg.MultiGroupEstimate], Estimate | None], name: str,
                         pair: tuple[str, str] | None = None) -> dict[str, Callable[[Sequence[Any]], float]]:
    return {name + s: aggregation(read, FIELDS[s], name + s, pair) for s in CI}


def pair_gap_aggregations(kind: str, pair: tuple[str, str]) -> dict[str, Callable[[Sequence[Any]], float]]:
    """``<kind>_pair_gap`` and its bounds for ``pair`` (used by the task class for a named pair)."""
    return with_ci_aggregations(lambda e: e.pair_gap, f"{kind}_pair_gap", pair)


def count_of(group: str) -> Callable[[Sequence[Any]], float]:
    def aggregate(items: Sequence[Any]) -> float:
        return float(sum(1 for item in items if item[0] == group))
    aggregate.__name__ = aggregate.__qualname__ = f"bold_n_{group}"
    return aggregate


def _mean_of(group: str) -> Callable[[mg.MultiGroupEstimate], Estimate | None]:
    return lambda e: e.means.get(group)


def _gap_of(group: str) -> Callable[[mg.MultiGroupEstimate], Estimate | None]:
    return lambda e: e.gaps.get(group)


def _module_aggregations() -> dict[str, Callable[[Sequence[Any]], float]]:
    """Every aggregation the YAMLs name: shared headline ones, per-group ones, and each domain's default pair gap
    as ``<domain>_<kind>_pair_gap[_ci_low|_ci_high]``."""
    out: dict[str, Callable[[Sequence[Any]], float]] = {}
    for kind in KINDS:
        out.update(with_ci_aggregations(lambda e: e.maxmin_gap, f"{kind}_maxmin_gap"))
        out.update(with_ci_aggregations(lambda e: e.dispersion, f"{kind}_dispersion"))
        for domain in vocab.DOMAINS.values():
            for name, fn in pair_gap_aggregations(kind, domain.default_pair).items():
                out[f"{domain.name}_{name}"] = fn
            for g in domain.groups:
                out.update(with_ci_aggregations(_mean_of(g), f"{kind}_mean_{g}"))
                out.update(with_ci_aggregations(_gap_of(g), f"{kind}_gap_{g}"))
    for domain in vocab.DOMAINS.values():
        out.update({f"bold_n_{g}": count_of(g) for g in domain.groups})
    return out


AGGREGATIONS = _module_aggregations()
globals().update(AGGREGATIONS)


# --- divergence aggregations -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _mean(items: tuple) -> Estimate | None:
    values = [x for x in items if not math.isnan(x)]
    return mean_estimate(values) if values else None


def _divergence_aggregation(name: str, field: str) -> Callable[[Sequence[float]], float]:
    def aggregate(items: Sequence[float]) -> float:
        result = _mean(tuple(float(x) for x in items))
        return NAN if result is None else float(getattr(result, field))
    aggregate.__name__ = aggregate.__qualname__ = name
    return aggregate


def pair_hellinger(items: Sequence[float]) -> float:
    """A pair's ``hellinger_<a>|<b>``: the mean over templates of its Hellinger distance (NaN without items)."""
    return float(np.mean(np.asarray(items, dtype=np.float64))) if len(items) else NAN


DIVERGENCE_AGGREGATIONS = {f"{base}{s}": _divergence_aggregation(f"{base}{s}", FIELDS[s])
                           for base in DIVERGENCES for s in CI}
globals().update(DIVERGENCE_AGGREGATIONS)


def yaml_metric_list(task: str) -> list[dict[str, Any]]:
    """The ``metric_list`` a task's YAML holds (a unit test checks the YAMLs against it)."""
    prefix = next(d.name for d in vocab.DOMAINS.values() if task.startswith(d.task_prefix))
    out = []
    for metric, higher in METRICS[task].items():
        function = (f"{prefix}_{metric}" if "_pair_gap" in metric else
                    "pair_hellinger" if "|" in metric else metric)
        out.append({"metric": metric, "aggregation": f"fairpriv.tasks.social_bias.aggregate.{function}",
                    "higher_is_better": higher})
    return out
