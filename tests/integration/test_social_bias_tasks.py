"""The race_bias and religion_bias groups end to end on the tiny random model (wiring, not quality): every reported
number equals the multi-group kernels (fairpriv.metrics.groups) applied to the logged samples, the named pair and
samples_per_prompt reach the metrics, and the divergence requests are one per group pair."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from fairpriv.metrics import groups as mg
from fairpriv.metrics.divergence import mean_estimate
from fairpriv.tasks.social_bias import aggregate, vocab

LIMIT = 8
BOLD = {"race_bias_bold": vocab.RACE, "religion_bias_bold": vocab.RELIGION}
DIVERGENCE = {"race_bias_divergence": vocab.RACE, "religion_bias_divergence": vocab.RELIGION}


def evaluate(tiny_model, tasks, metadata=None, limit=LIMIT):
    import fairpriv  # noqa: F401  (adds fairpriv's task folder to every TaskManager)
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model},device=cpu,dtype=float32", tasks=tasks, limit=limit,
        batch_size=3, task_manager=TaskManager(include_defaults=False, metadata=metadata), log_samples=True,
        bootstrap_iters=0,
    )


@pytest.fixture(scope="module")
def results(tiny_model):
    return evaluate(tiny_model, ["race_bias", "religion_bias"])


def row(results, task):
    return {k.split(",")[0]: v for k, v in results["results"][task].items() if "," in k and "_stderr" not in k}


def items(results, task, metric):
    return [s[metric] for s in results["samples"][task]]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


def grouped(values, domain):
    """Logged ``[group, score*]`` values -> {group: [per-prompt scores]} in the domain's group order."""
    out = {}
    for group, *scores in values:
        out.setdefault(group, []).append(scores)
    return {g: out[g] for g in domain.groups if g in out}


def test_every_task_reports_its_metrics_as_floats_and_the_table_prints(results):
    from lm_eval.utils import make_table

    assert set(results["group_subtasks"]) >= {"race_bias", "religion_bias"}
    for task in (*BOLD, *DIVERGENCE):
        metrics = row(results, task)
        assert set(metrics) == set(aggregate.METRICS[task]), task
        assert all(isinstance(v, float) for v in metrics.values()), task
        assert results["versions"][task] == 1 and len(results["samples"][task]) == LIMIT
    table = make_table(results)
    assert "toxicity_maxmin_gap" in table and "hellinger_judaism\\|islam" in table
    json.dumps(results["results"])


@pytest.mark.parametrize("task", sorted(BOLD))
def test_bold_metrics_equal_the_kernels_on_logged_samples(results, task):
    domain, metrics, samples = BOLD[task], row(results, task), results["samples"][task]
    assert [s["doc"]["group"] for s in samples[:len(domain.groups)]] == list(domain.groups)[:LIMIT]
    scored = samples[0]["filtered_resps"][0]
    assert samples[0]["toxicity_maxmin_gap"] == [samples[0]["doc"]["group"], scored["toxicity"]]
    assert samples[0]["sentiment_dispersion"] == [samples[0]["doc"]["group"], scored["sentiment"]]
    config = results["configs"][task]["metadata"]
    assert config["pair"] == list(domain.default_pair) and config["pair_source"] == "default"
    for kind in ("toxicity", "sentiment"):
        expected = mg.multigroup_estimate(grouped(items(results, task, f"{kind}_maxmin_gap"), domain),
                                          pair=domain.default_pair)
        for name, est in ((f"{kind}_maxmin_gap", expected.maxmin_gap), (f"{kind}_dispersion", expected.dispersion),
                          (f"{kind}_pair_gap", expected.pair_gap)):
            assert (metrics[name], metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"]) == pytest.approx(
                (est.value, est.ci_low, est.ci_high), abs=1e-12), name
        for g in domain.groups:
            mean, gap = expected.means.get(g), expected.gaps.get(g)
            assert same(metrics[f"{kind}_mean_{g}"], mean.value if mean else math.nan)
            assert same(metrics[f"{kind}_gap_{g}_ci_high"], gap.ci_high if gap else math.nan)
            assert metrics[f"bold_n_{g}"] == expected.sizes.get(g, 0)
    # the kernel's hand-checkable parts, straight from the logged values
    means = mg.group_means(grouped(items(results, task, "toxicity_maxmin_gap"), domain))
    assert metrics["toxicity_maxmin_gap"] == pytest.approx(max(means.values()) - min(means.values()))
    assert metrics["toxicity_pair_gap"] == pytest.approx(means[domain.default_pair[0]] - means[domain.default_pair[1]])


@pytest.mark.parametrize("task", sorted(DIVERGENCE))
def test_divergences_are_means_over_group_pairs(results, task):
    domain, metrics, samples = DIVERGENCE[task], row(results, task), results["samples"][task]
    pairs = list(itertools.combinations(domain.groups, 2))
    first = samples[0]
    assert len(first["arguments"]) == len(pairs)
    assert tuple(first["arguments"][0][:2]) == tuple(vocab.fill(vocab.TEMPLATES[0], domain.terms[g])
                                                       for g in pairs[0])
    records = first["filtered_resps"]
    assert first["kl_bias"] == pytest.approx(sum((r["kl_ab"] + r["kl_ba"]) / 2 for r in records) / len(pairs))
    assert first["tvd_bias"] == pytest.approx(sum(r["tvd"] for r in records) / len(pairs))
    for (a, b), record in zip(pairs, records, strict=True):
        assert first[f"hellinger_{a}|{b}"] == record["hellinger"]
    for name in ("kl_bias", "js_bias", "hellinger_bias", "tvd_bias"):
        expected = mean_estimate(items(results, task, name))
        assert (metrics[name], metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"]) == pytest.approx(
            (expected.value, expected.ci_low, expected.ci_high))
    a, b = pairs[-1]
    assert metrics[f"hellinger_{a}|{b}"] == pytest.approx(
        sum(items(results, task, f"hellinger_{a}|{b}")) / LIMIT)


def test_named_pair_and_samples_per_prompt(tiny_model):
    results = evaluate(tiny_model, ["religion_bias_bold"], limit=7,
                       metadata={"pair": ["Islam", "judaism"], "samples_per_prompt": 2})
    config = results["configs"]["religion_bias_bold"]
    assert config["metadata"]["pair"] == ["islam", "judaism"] and config["metadata"]["pair_source"] == "metadata"
    assert config["repeats"] == 2
    values = items(results, "religion_bias_bold", "toxicity_pair_gap")
    assert all(len(v) == 3 and isinstance(v[0], str) for v in values)        # [group, score_1, score_2]
    means = mg.group_means(grouped(values, vocab.RELIGION))
    assert row(results, "religion_bias_bold")["toxicity_pair_gap"] == pytest.approx(means["islam"] - means["judaism"])
