"""Paired significance between two runs' ``--log_samples`` records: a variant and its base on the same items.

lm-eval writes, per document, the value ``process_results`` returned for every metric (e.g. an awareness verdict
label, ``1.0`` for a correct MMLU answer, ``[loglikelihood, n_words]`` for perplexity, ``[group, toxicity]`` for
BOLD). :func:`compare` aligns the records of the two runs by ``doc_hash`` (``doc_id`` when a run lacks hashes),
keeps only the documents present in both, and picks the test from :data:`RULES`:

* per-item binary outcomes (awareness verdicts, MMLU accuracy): exact McNemar test
  (:func:`fairpriv.report.stats.mcnemar`). Awareness is safe / (safe + unsafe), so its test uses the documents the
  judge labelled (0 or 1) in *both* runs; ``awareness_dnf`` tests the did-not-follow flag (-1) on all documents.
* corpus-level or group-level statistics (perplexities, every gender-bias metric): paired bootstrap
  (:func:`fairpriv.report.stats.paired_bootstrap`) over the task's unit: the document (chunk, prompt, prompt pair),
  or the occupation for ``gender_bias_occupation_likelihood``, whose correlations are over occupations. The
  statistics are point versions of the tasks' own aggregations (:mod:`fairpriv.metrics.gender_tasks`, lm-eval's
  ``weighted_perplexity`` and ``bits_per_byte``) without their internal bootstrap; a unit test checks each
  against the aggregation on the same items. The bootstrap resamples documents of both gender groups together,
  so a group's size varies across resamples (the tasks' own intervals stratify); resamples where a statistic is
  undefined (e.g. a group drawn empty) are dropped and counted.
* the multi-group BOLD tasks (``race_bias_bold``, ``religion_bias_bold``; ``[group, score*]`` per prompt): a paired
  bootstrap over prompts of the point statistics of :mod:`fairpriv.report.multigroup` (max-min gap, dispersion,
  pair gap, group means, group gaps), bound when the test runs (:class:`Groups`) to the groups of the aligned
  documents (a resample that lacks one of them is undefined: dropped and counted) and, for the pair gap, to the
  ``pair`` of the task config's metadata (else the task's default pair). Two runs naming different pairs are not
  compared.
* next-token divergences (``gender_bias_divergence``, ``race_bias_divergence``, ``religion_bias_divergence``; one
  float per prompt pair or template, also per group pair): a paired permutation test of the mean
  (:func:`fairpriv.report.stats.paired_permutation`).

A task or metric without a rule (interval bounds ``*_ci_low``/``*_ci_high``, counts, p-values) gives None, as do
two runs without a common document: nothing is guessed. No torch, no lm_eval.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

import numpy as np

from fairpriv.metrics.divergence import js_rows, tv_rows
from fairpriv.metrics.gender import count_gendered, first_occupation, preference
from fairpriv.metrics.gender_tasks import count_words, default_matcher, prompt_value
from fairpriv.report import multigroup as mg
from fairpriv.report.stats import N_RESAMPLES, TestResult, mcnemar, paired_bootstrap, paired_permutation

Record = dict[str, Any]
NAN = float("nan")


# --- test specifications -----------------------------------------------------------------------------------------
def _always(value: Any) -> bool:
    return True


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Binary:
    """McNemar on ``outcome(value)`` over the aligned documents where ``keep(value)`` holds in both runs."""

    outcome: Callable[[Any], bool]
    keep: Callable[[Any], bool] = _always


@dataclass(frozen=True)
class Corpus:
    """Paired bootstrap of ``statistic`` over ``item(value)``s; ``unit`` groups items into resampling units."""

    statistic: Callable[[list[Any]], float]
    item: Callable[[Any], Any] = _identity
    unit: Callable[[Any], Hashable] | None = None
    permutation: bool = False  # a paired permutation test instead (exact for a few items; means of per-item values)


@dataclass(frozen=True)
class Groups:
    """Paired bootstrap over prompts of a multi-group BOLD statistic (:mod:`fairpriv.report.multigroup`), made a
    :class:`Corpus` by :func:`bind` when the test runs: ``kind`` is ``maxmin``, ``dispersion``, ``pair``, ``mean``
    or ``gap``; ``pair`` the task's default pair; ``group`` the group a ``mean``/``gap`` metric names (filled in by
    :func:`spec_for` from the rule's ``group`` match)."""

    kind: str
    pair: tuple[str, str] | None = None
    group: str | None = None


Spec = Union[Binary, Corpus, Groups]


# --- awareness and MMLU (per-document labels) --------------------------------------------------------------------
def is_judged(label: Any) -> bool:
    """The judge labelled the document safe (0) or unsafe (1)."""
    return int(label) in (0, 1)


def is_safe(label: Any) -> bool:
    return int(label) == 0


def did_not_follow(label: Any) -> bool:
    return int(label) == -1


def is_correct(value: Any) -> bool:
    """MMLU ``acc`` of one document: 1.0 correct, 0.0 wrong."""
    score = float(value)
    if score not in (0.0, 1.0):
        raise ValueError(f"a per-document accuracy must be 0 or 1, got {value!r}")
    return score == 1.0


# --- perplexity ([loglikelihood, units] per chunk, as lm-eval's weighted_perplexity / bits_per_byte) -------------
def loglikelihood_units(value: Any) -> tuple[float, float]:
    loglikelihood, units = value
    return float(loglikelihood), float(units)


def _mean_loglikelihood(items: Sequence[tuple[float, float]]) -> float:
    units = sum(n for _, n in items)
    return sum(ll for ll, _ in items) / units if units else NAN


def perplexity(items: Sequence[tuple[float, float]]) -> float:
    """exp(-sum loglikelihood / sum units): word, byte or token perplexity of the pooled chunks."""
    return math.exp(-_mean_loglikelihood(items))


def bits_per_byte(items: Sequence[tuple[float, float]]) -> float:
    """-sum loglikelihood / sum bytes / ln 2."""
    return -_mean_loglikelihood(items) / math.log(2)


# --- gender_bias_bold ([group, score*] per prompt) ---------------------------------------------------------------
def bold_item(value: Any) -> tuple[str, float]:
    """(group, the prompt's score: the mean over its continuations when there are several)."""
    group, score = value
    return str(group), float(prompt_value(score))


def _group_values(items: Sequence[tuple[str, Any]], group: str) -> list[Any]:
    return [v for g, v in items if g == group]


def group_gap(items: Sequence[tuple[str, float]]) -> float:
    """Mean female score - mean male score over prompts; NaN when a group has no prompt."""
    female, male = _group_values(items, "female"), _group_values(items, "male")
    return float(np.mean(female) - np.mean(male)) if female and male else NAN


def group_mean(group: str) -> Callable[[Sequence[tuple[str, float]]], float]:
    def statistic(items: Sequence[tuple[str, float]]) -> float:
        values = _group_values(items, group)
        return float(np.mean(values)) if values else NAN
    statistic.__name__ = f"{group}_mean"
    return statistic


# --- gender_bias_occupation ([group, generation*] per prompt) ----------------------------------------------------
def _texts(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(t) for t in value]


def occupation_item(value: Any) -> tuple[str, tuple[str | None, ...]]:
    """(group, the first occupation matched in each continuation, None when none matched)."""
    group, generations = value
    return str(group), tuple(first_occupation(t, default_matcher()) for t in _texts(generations))


@functools.lru_cache(maxsize=1)
def occupation_labels() -> tuple[str, ...]:
    """Every occupation the task's matcher knows, sorted (the support of the task's distributions)."""
    return tuple(sorted(set(default_matcher().forms.values())))


def _occupation_log_probs(items: Sequence[tuple[str, tuple]], group: str) -> np.ndarray | None:
    """Log of the group's occupation distribution over every known occupation (None if nothing matched)."""
    counts = Counter(o for g, occupations in items if g == group for o in occupations if o is not None)
    totals = np.array([counts[o] for o in occupation_labels()], dtype=np.float64)
    if totals.sum() == 0:
        return None
    with np.errstate(divide="ignore"):
        return np.log(totals / totals.sum())[None, :]


def occupation_divergence(kind: str) -> Callable[[Sequence[tuple[str, tuple]]], float]:
    """JS divergence (nats) or TV distance between the female and male occupation distributions."""
    rows = {"js": js_rows, "tvd": tv_rows}[kind]

    def statistic(items: Sequence[tuple[str, tuple]]) -> float:
        lp, lq = _occupation_log_probs(items, "female"), _occupation_log_probs(items, "male")
        return NAN if lp is None or lq is None else float(rows(lp, lq)[0])
    statistic.__name__ = f"occupation_{kind}"
    return statistic


def unmatched_share(group: str) -> Callable[[Sequence[tuple[str, tuple]]], float]:
    """Mean over the group's prompts of the share of continuations where no occupation matched."""
    def statistic(items: Sequence[tuple[str, tuple]]) -> float:
        shares = [sum(o is None for o in occs) / len(occs) for g, occs in items if g == group]
        return float(np.mean(shares)) if shares else NAN
    statistic.__name__ = f"unmatched_{group}"
    return statistic


# --- gender_bias_occupation_likelihood ([occupation, ll_he, ll_she, bls_pct_female] per prompt) ------------------
def likelihood_item(value: Any) -> tuple[str, float, float]:
    """(occupation, log-odds ll_he - ll_she, BLS female share)."""
    occupation, ll_he, ll_she, share = value
    return str(occupation), float(ll_he) - float(ll_she), float(share)


@functools.lru_cache(maxsize=65536)
def _unit_summary(unit: tuple[tuple[str, float, float], ...]) -> tuple[str, float, float]:
    """(occupation, mean log-odds over its prompts, female share) of one occupation unit."""
    return unit[0][0], float(np.mean([log_odds for _, log_odds, _ in unit])), unit[-1][2]


def _occupation_columns(units: Sequence[tuple[tuple[str, float, float], ...]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per occupation unit (sorted by name): mean log-odds and female share; None when correlations are undefined."""
    rows = sorted((_unit_summary(tuple(u)) for u in units), key=lambda row: row[0])
    x = np.array([row[1] for row in rows], dtype=np.float64)
    y = np.array([row[2] for row in rows], dtype=np.float64)
    distinct = len({row[0] for row in rows})
    if distinct < 3 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return x, y


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two non-constant columns (equals scipy.stats.pearsonr's statistic to rounding)."""
    xm, ym = x - x.mean(), y - y.mean()
    return float(np.clip(xm @ ym / math.sqrt((xm @ xm) * (ym @ ym)), -1.0, 1.0))


def occupation_correlation(kind: str) -> Callable[[Sequence[Sequence[tuple]]], float]:
    """Pearson or Spearman (Pearson of average ranks) correlation of per-occupation he/she log-odds with the
    female share."""
    from scipy.stats import rankdata

    def statistic(units: Sequence[Sequence[tuple]]) -> float:
        columns = _occupation_columns(units)
        if columns is None:
            return NAN
        return pearson(*columns) if kind == "pearson" else pearson(rankdata(columns[0]), rankdata(columns[1]))
    statistic.__name__ = f"occupation_ll_{kind}"
    return statistic


def mean_log_odds(units: Sequence[Sequence[tuple]]) -> float:
    """Mean over occupations of the he/she log-odds (NaN where the task's correlations are undefined)."""
    columns = _occupation_columns(units)
    return NAN if columns is None else float(columns[0].mean())


def occupation_unit(item: tuple[str, float, float]) -> str:
    return item[0]


# --- gender_bias_count ([generation*, male_words*, female_words*] per prompt) ------------------------------------
def count_item(value: Any) -> tuple[tuple[int, int], ...]:
    """(male, female) gendered word counts of each continuation, recounted with the task's word lists."""
    return tuple(count_gendered(t, *count_words()) for t in _texts(value[0]))


def _word_totals(items: Sequence[tuple[tuple[int, int], ...]]) -> tuple[int, int]:
    return sum(m for item in items for m, _ in item), sum(f for item in items for _, f in item)


def count_ratio(items: Sequence[tuple[tuple[int, int], ...]]) -> float:
    """(M - F) / (M + F) over all continuations; NaN without a gendered word."""
    male, female = _word_totals(items)
    return (male - female) / (male + female) if male + female else NAN


def count_representation(items: Sequence[tuple[tuple[int, int], ...]]) -> float:
    """HELM's representation: |ratio| / 2."""
    return abs(count_ratio(items)) / 2


def preference_rate(kind: str) -> Callable[[Sequence[tuple[tuple[int, int], ...]]], float]:
    """Mean over prompts of the share of continuations whose preference is ``kind`` (male/female/equal/invalid)."""
    def statistic(items: Sequence[tuple[tuple[int, int], ...]]) -> float:
        return float(np.mean([sum(preference(m, f) == kind for m, f in item) / len(item) for item in items]))
    statistic.__name__ = f"count_{kind}_rate"
    return statistic


def word_total(side: int) -> Callable[[Sequence[tuple[tuple[int, int], ...]]], float]:
    def statistic(items: Sequence[tuple[tuple[int, int], ...]]) -> float:
        return float(_word_totals(items)[side])
    statistic.__name__ = ("count_male_words", "count_female_words")[side]
    return statistic


# --- gender_bias_divergence (one float per prompt pair) ----------------------------------------------------------
def mean(items: Sequence[float]) -> float:
    return float(np.asarray(items, dtype=np.float64).mean())


# --- race_bias_bold, religion_bias_bold ([group, score*] per prompt, more than two groups) ------------------------
RACE_PAIR = ("European_Americans", "African_Americans")
RELIGION_PAIR = ("christianity", "islam")


def pair_of(spec: Groups, metadata: Mapping[str, Any] | None) -> tuple[str, str]:
    """The pair a ``pair`` statistic compares: the task config's ``metadata.pair``, else the spec's default."""
    pair = (metadata or {}).get("pair") or spec.pair
    if isinstance(pair, str) and len(parts := re.split(r"\s*[,|]\s*", pair.strip())) == 2:
        pair = parts  # "a,b" or "a|b", as the tasks' --metadata accepts
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(g, str) for g in pair)
            or pair[0] == pair[1]):
        raise ValueError(f"a pair gap needs two different group names, got pair={pair!r}")
    return str(pair[0]), str(pair[1])


def _named(statistic: Callable[[list[Any]], float], name: str) -> Callable[[list[Any]], float]:
    statistic.__name__ = name
    return statistic


def bind(spec: Groups, base: Sequence[Any], variant: Sequence[Any],
         metadata: Mapping[str, Any] | None = None) -> Corpus | None:
    """The spec's statistic over the groups of the aligned values; None when a group it names is not among them."""
    groups = sorted({mg.bold_item(v)[0] for v in [*base, *variant]})
    if spec.kind in ("maxmin", "dispersion"):
        kernel = mg.maxmin_gap if spec.kind == "maxmin" else mg.dispersion
        return Corpus(_named(lambda items: kernel(items, groups), f"{spec.kind}_of_{len(groups)}"), item=mg.bold_item)
    if spec.kind == "pair":
        pair = tuple(mg.resolve_group(g, groups) for g in pair_of(spec, metadata))
        if None in pair:
            return None
        return Corpus(_named(lambda items: mg.pair_gap(items, pair), f"pair_gap_{pair[0]}_{pair[1]}"),
                      item=mg.bold_item)
    group = mg.resolve_group(spec.group or "", groups)
    if group is None:
        return None
    if spec.kind == "mean":
        return Corpus(_named(lambda items: mg.group_mean(items, group), f"mean_{group}"), item=mg.bold_item)
    if spec.kind == "gap":
        return Corpus(_named(lambda items: mg.group_gap(items, group, groups), f"gap_{group}"), item=mg.bold_item)
    raise ValueError(f"unknown multi-group statistic {spec.kind!r}")


def same_pair(task: str, metric: str, base_metadata: Mapping[str, Any] | None,
              variant_metadata: Mapping[str, Any] | None) -> bool:
    """False when ``metric`` is a pair gap and the two runs' configs name different pairs (not comparable)."""
    spec = spec_for(task, _metric_filter(metric, None)[0])
    if not isinstance(spec, Groups) or spec.kind != "pair":
        return True
    base, variant = pair_of(spec, base_metadata), pair_of(spec, variant_metadata)
    return [mg.normal(g) for g in base] == [mg.normal(g) for g in variant]


# --- the table ---------------------------------------------------------------------------------------------------
AWARENESS = r"(fairness|privacy)_awareness"
PERPLEXITY_ITEMS = dict(item=loglikelihood_units)
COUNT_ITEMS = dict(item=count_item)
OCCUPATION_ITEMS = dict(item=occupation_item)
LIKELIHOOD_ITEMS = dict(item=likelihood_item, unit=occupation_unit)
MULTI_BOLD = r"(race|religion)_bias_bold"
SCORE = r"(toxicity|sentiment)"
GROUP_SUFFIX = r"(?!\w*_ci_(low|high)$)(?P<group>\w+)"  # a group name; never an interval bound's metric
DIVERGENCES = "js_bias|hellinger_bias|tvd_bias"

# (task pattern, metric pattern, spec): the first rule whose patterns both match the whole name applies.
RULES: tuple[tuple[str, str, Spec], ...] = (
    (AWARENESS + "(_mc)?", r"awareness|by_\w+_awareness", Binary(is_safe, keep=is_judged)),
    (AWARENESS, r"awareness_dnf|by_\w+_dnf", Binary(did_not_follow)),
    (r"mmlu_offline(_mini)?_\w+|fairpriv_sanity", "acc", Binary(is_correct)),
    ("bold_wiki_perplexity", "(word|byte|token)_perplexity", Corpus(perplexity, **PERPLEXITY_ITEMS)),
    ("bold_wiki_perplexity", "bits_per_byte", Corpus(bits_per_byte, **PERPLEXITY_ITEMS)),
    ("gender_bias_bold", "(toxicity|sentiment)_bias", Corpus(group_gap, item=bold_item)),
    ("gender_bias_bold", "(toxicity|sentiment)_female", Corpus(group_mean("female"), item=bold_item)),
    ("gender_bias_bold", "(toxicity|sentiment)_male", Corpus(group_mean("male"), item=bold_item)),
    ("gender_bias_occupation", "occupation_js", Corpus(occupation_divergence("js"), **OCCUPATION_ITEMS)),
    ("gender_bias_occupation", "occupation_tvd", Corpus(occupation_divergence("tvd"), **OCCUPATION_ITEMS)),
    ("gender_bias_occupation", "occupation_unmatched_female", Corpus(unmatched_share("female"), **OCCUPATION_ITEMS)),
    ("gender_bias_occupation", "occupation_unmatched_male", Corpus(unmatched_share("male"), **OCCUPATION_ITEMS)),
    ("gender_bias_occupation_likelihood", "occupation_ll_pearson",
     Corpus(occupation_correlation("pearson"), **LIKELIHOOD_ITEMS)),
    ("gender_bias_occupation_likelihood", "occupation_ll_spearman",
     Corpus(occupation_correlation("spearman"), **LIKELIHOOD_ITEMS)),
    ("gender_bias_occupation_likelihood", "occupation_log_odds", Corpus(mean_log_odds, **LIKELIHOOD_ITEMS)),
    ("gender_bias_count", "count_ratio", Corpus(count_ratio, **COUNT_ITEMS)),
    ("gender_bias_count", "count_representation", Corpus(count_representation, **COUNT_ITEMS)),
    *(("gender_bias_count", f"count_{k}_rate", Corpus(preference_rate(k), **COUNT_ITEMS))
      for k in ("male", "female", "equal", "invalid")),
    ("gender_bias_count", "count_male_words", Corpus(word_total(0), **COUNT_ITEMS)),
    ("gender_bias_count", "count_female_words", Corpus(word_total(1), **COUNT_ITEMS)),
    # Means of per-pair values: a paired permutation test, exact with few pairs, where the bootstrap's p would sit at
    # its floor whenever every pair moves the same way.
    ("gender_bias_divergence", "kl_bias_mf|kl_bias_fm|" + DIVERGENCES, Corpus(mean, permutation=True)),
    ("(race|religion)_bias_divergence", "kl_bias|" + DIVERGENCES, Corpus(mean, permutation=True)),
    ("(race|religion)_bias_divergence", r"hellinger_\w+\|\w+", Corpus(mean, permutation=True)),  # one group pair
    (MULTI_BOLD, SCORE + "_maxmin_gap", Groups("maxmin")),
    (MULTI_BOLD, SCORE + "_dispersion", Groups("dispersion")),
    ("race_bias_bold", SCORE + "_pair_gap", Groups("pair", pair=RACE_PAIR)),
    ("religion_bias_bold", SCORE + "_pair_gap", Groups("pair", pair=RELIGION_PAIR)),
    (MULTI_BOLD, SCORE + "_mean_" + GROUP_SUFFIX, Groups("mean")),
    (MULTI_BOLD, SCORE + "_gap_" + GROUP_SUFFIX, Groups("gap")),
)


def spec_for(task: str, metric: str) -> Spec | None:
    """The test of ``metric`` (without ``,filter``) of ``task``; None when there is no paired test for it."""
    for task_pattern, metric_pattern, spec in RULES:
        match = re.fullmatch(metric_pattern, metric) if re.fullmatch(task_pattern, task) else None
        if match is not None:
            return replace(spec, group=match["group"]) if "group" in match.re.groupindex else spec
    return None


# --- alignment ---------------------------------------------------------------------------------------------------
def _one_filter(records: Iterable[Record], filter: str | None, name: str) -> list[Record]:
    """The records of ``filter`` (records without a ``filter`` field match any); ValueError when filters mix."""
    kept = [r for r in records if filter is None or r.get("filter", filter) == filter]
    filters = sorted({str(r.get("filter")) for r in kept})
    if len(filters) > 1:
        raise ValueError(f"{name} samples mix filters {filters}: pass filter= to compare one of them")
    return kept


def _key_field(records: Iterable[Record]) -> str:
    """``doc_hash`` when every record has one, else ``doc_id``."""
    records = list(records)
    if all(r.get("doc_hash") for r in records):
        return "doc_hash"
    if all("doc_id" in r for r in records):
        return "doc_id"
    raise ValueError("a sample record has neither doc_hash nor doc_id: cannot pair documents across runs")


def _by_document(records: Sequence[Record], metric: str, field: str) -> dict[tuple[Any, int], Any]:
    """Metric value per (document key, occurrence): repeated documents pair up in file order."""
    seen: Counter = Counter()
    out = {}
    for record in records:
        if record.get(metric) is None:  # the metric does not apply to this document (per-axis awareness)
            continue
        key = record[field]
        out[(key, seen[key])] = record[metric]
        seen[key] += 1
    return out


def align(base_samples: Sequence[Record], variant_samples: Sequence[Record], metric: str,
          filter: str | None = None) -> tuple[list[Any], list[Any]]:
    """The metric values of the documents present in both runs, in the base run's order."""
    base = _one_filter(base_samples, filter, "base")
    variant = _one_filter(variant_samples, filter, "variant")
    field = _key_field([*base, *variant])
    b, v = _by_document(base, metric, field), _by_document(variant, metric, field)
    keys = [k for k in b if k in v]
    return [b[k] for k in keys], [v[k] for k in keys]


# --- running a test ----------------------------------------------------------------------------------------------
def resampling_units(spec: Corpus, base: Sequence[Any], variant: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Items of both runs, grouped into resampling units when the spec has a unit (same unit in both runs)."""
    b, v = [spec.item(x) for x in base], [spec.item(x) for x in variant]
    if spec.unit is None:
        return b, v
    groups: dict[Hashable, list[int]] = {}
    for i, (x, y) in enumerate(zip(b, v)):
        if spec.unit(x) != spec.unit(y):
            raise ValueError(f"a document's unit differs between runs: {spec.unit(x)!r} vs {spec.unit(y)!r}")
        groups.setdefault(spec.unit(x), []).append(i)
    return [tuple(b[i] for i in g) for g in groups.values()], [tuple(v[i] for i in g) for g in groups.values()]


def run(spec: Spec, base: Sequence[Any], variant: Sequence[Any], seed: int = 0,
        n_resamples: int = N_RESAMPLES, metadata: Mapping[str, Any] | None = None) -> TestResult | None:
    """The spec's test on aligned per-document values; None when no document qualifies (or, for a multi-group
    statistic, when the group it names is not among the documents). ``metadata``: the task config's."""
    if isinstance(spec, Groups):
        bound = bind(spec, base, variant, metadata) if base else None
        return None if bound is None else run(bound, base, variant, seed, n_resamples)
    if isinstance(spec, Binary):
        pairs = [(x, y) for x, y in zip(base, variant) if spec.keep(x) and spec.keep(y)]
        if not pairs:
            return None
        return mcnemar([spec.outcome(x) for x, _ in pairs], [spec.outcome(y) for _, y in pairs])
    b, v = resampling_units(spec, base, variant)
    if not b:
        return None
    if spec.permutation:
        return paired_permutation(b, v, spec.statistic, n_permutations=n_resamples, seed=seed)
    return paired_bootstrap(b, v, spec.statistic, n_resamples=n_resamples, seed=seed)


def _metric_filter(metric: str, filter: str | None) -> tuple[str, str | None]:
    """``"acc,none"`` -> ``("acc", "none")``: a results-JSON key names the filter unless ``filter`` is given."""
    name, _, metric_filter = metric.partition(",")
    return name, filter or metric_filter or None


def compare(task: str, metric: str, base_samples: Sequence[Record], variant_samples: Sequence[Record],
            seed: int = 0, filter: str | None = None, n_resamples: int = N_RESAMPLES,
            metadata: Mapping[str, Any] | None = None,
            variant_metadata: Mapping[str, Any] | None = None) -> TestResult | None:
    """Paired test of ``metric`` (``"acc"`` or ``"acc,none"``) between two runs of ``task`` on their common
    documents; None when the metric has no paired test or the runs share no document. ``metadata`` and
    ``variant_metadata``: the task config's metadata of the base and the variant run (a pair gap reads its pair
    there; runs naming different pairs give None)."""
    name, filter = _metric_filter(metric, filter)
    spec = spec_for(task, name)
    if spec is None:
        return None
    if variant_metadata is not None and not same_pair(task, name, metadata, variant_metadata):
        return None
    base, variant = align(base_samples, variant_samples, name, filter)
    return run(spec, base, variant, seed, n_resamples, metadata) if base else None


def pooled_spec(tasks: Iterable[str], metric: str) -> Spec | None:
    """The one test shared by ``metric`` of all ``tasks``; None when a task has none; ValueError when they differ."""
    specs = [spec_for(task, metric) for task in tasks]
    if not specs or any(spec is None for spec in specs):
        return None
    if any(spec is not specs[0] for spec in specs):
        raise ValueError(f"cannot pool {metric!r}: the tasks need different tests")
    return specs[0]


def compare_pooled(metric: str, runs: Iterable[tuple[str, Sequence[Record], Sequence[Record]]], seed: int = 0,
                   filter: str | None = None, n_resamples: int = N_RESAMPLES) -> TestResult | None:
    """One test over the pooled common documents of several tasks, e.g. all subjects of an MMLU group, whose
    ``acc`` lm-eval reports as the document-weighted mean of its subjects. ``runs``: (task, base, variant)."""
    runs, (name, filter) = list(runs), _metric_filter(metric, filter)
    spec = pooled_spec([task for task, _, _ in runs], name)
    pairs = [align(b, v, name, filter) for _, b, v in runs] if spec is not None else []
    base, variant = [x for b, _ in pairs for x in b], [y for _, v in pairs for y in v]
    return run(spec, base, variant, seed, n_resamples) if spec is not None and base else None
