"""Multi-group bias kernels (fairpriv.metrics.groups) against hand-computed values, and the lm-eval glue of the race
and religion tasks (items, aggregations, the named pair, the YAML metric lists)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from fairpriv.metrics import gender as gd
from fairpriv.metrics import groups as mg
from fairpriv.tasks.social_bias import aggregate, tasks, vocab

# Four groups of unequal sizes (2, 1, 3, 4 prompts); group "c" has a prompt with two sampled continuations.
GROUPS = {"a": [0.1, 0.3], "b": [0.5], "c": [0.0, 0.6, [0.4, 0.8]], "d": [0.9, 0.7, 0.8, 0.6]}
MEANS = {"a": 0.2, "b": 0.5, "c": 0.4, "d": 0.75}


def test_group_means_average_continuations_first_then_prompts():
    assert mg.group_means(GROUPS) == pytest.approx(MEANS)
    assert mg.prompt_values([0.5, [0.0, 1.0], [0.25]], "x").tolist() == [0.5, 0.5, 0.25]


def test_maxmin_dispersion_and_gaps_by_hand():
    assert mg.maxmin_gap(MEANS) == pytest.approx(0.55)
    # mean of means 0.4625; squared deviations 0.06890625 + 0.00140625 + 0.00390625 + 0.08265625 = 0.156875
    assert mg.dispersion(MEANS) == pytest.approx(math.sqrt(0.156875 / 4))
    assert mg.gaps_to_others(MEANS) == pytest.approx({"a": 0.2 - 1.65 / 3, "b": 0.5 - 1.35 / 3,
                                                      "c": 0.4 - 1.45 / 3, "d": 0.75 - 1.1 / 3})
    assert mg.gaps_to_others(MEANS)["b"] == pytest.approx(0.05)


def test_pair_gap_is_signed():
    assert mg.pair_gap(MEANS, ("d", "a")) == pytest.approx(0.55)
    assert mg.pair_gap(MEANS, ("a", "d")) == pytest.approx(-0.55)
    assert mg.pair_gap({"islam": 0.2, "christianity": 0.05}, ["islam", "christianity"]) == pytest.approx(0.15)


def test_multigroup_estimate_points_equal_the_simple_kernels():
    e = mg.multigroup_estimate(GROUPS, pair=("d", "a"))
    assert e.groups == ("a", "b", "c", "d") and dict(e.sizes) == {"a": 2, "b": 1, "c": 3, "d": 4}
    assert {g: m.value for g, m in e.means.items()} == pytest.approx(MEANS)
    assert {g: x.value for g, x in e.gaps.items()} == pytest.approx(mg.gaps_to_others(MEANS))
    assert e.maxmin_gap.value == pytest.approx(0.55) and e.dispersion.value == pytest.approx(mg.dispersion(MEANS))
    assert e.pair == ("d", "a") and e.pair_gap.value == pytest.approx(0.55)
    assert e.means["b"].n == 1 and e.maxmin_gap.n == 10 and e.pair_gap.n == 6
    assert mg.multigroup_estimate(GROUPS).pair_gap is None


def test_a_group_of_one_prompt_keeps_its_exact_mean_in_every_resample():
    e = mg.multigroup_estimate(GROUPS)
    assert (e.means["b"].ci_low, e.means["b"].ci_high) == (0.5, 0.5)
    constant = mg.multigroup_estimate({"x": [0.25], "y": [0.5, 0.5], "z": [[1.0, 0.0]]}, pair=("y", "x"))
    assert (constant.pair_gap.value, constant.pair_gap.ci_low, constant.pair_gap.ci_high) == (0.25, 0.25, 0.25)
    assert (constant.maxmin_gap.ci_low, constant.maxmin_gap.ci_high) == (0.25, 0.25)


def test_intervals_are_seeded_ordered_and_stratified():
    e, again, other = (mg.multigroup_estimate(GROUPS, ("d", "a"), seed=s) for s in (0, 0, 1))
    assert e == again and e != other
    for est in (*e.means.values(), *e.gaps.values(), e.pair_gap):
        assert est.ci_low <= est.value + 1e-12 <= est.ci_high + 2e-12
    for g, values in (("a", [0.1, 0.3]), ("d", [0.9, 0.7, 0.8, 0.6])):   # resampled within the group only
        assert min(values) <= e.means[g].ci_low <= e.means[g].ci_high <= max(values)
    assert e.maxmin_gap.ci_low >= 0 and e.dispersion.ci_low >= 0


def test_two_groups_give_the_gender_tasks_stratified_gap_interval():
    female, male = [0.1, 0.4, 0.2, 0.9], [0.3, 0.0, 0.5]
    e = mg.multigroup_estimate({"female": female, "male": male}, pair=("female", "male"))
    assert (e.pair_gap.ci_low, e.pair_gap.ci_high) == pytest.approx(gd.stratified_gap_ci(female, male))
    assert e.maxmin_gap.value == pytest.approx(abs(np.mean(female) - np.mean(male)))


def test_empty_group_and_bad_pairs_fail_clearly():
    with pytest.raises(ValueError, match="group 'islam' has no prompts"):
        mg.multigroup_estimate({"christianity": [0.1], "islam": []})
    with pytest.raises(ValueError, match="group 'b' has no prompts"):
        mg.group_means({"a": [0.1], "b": []})
    with pytest.raises(ValueError, match="pair group 'sikhism' has no prompts here"):
        mg.multigroup_estimate({"a": [0.1], "b": [0.2]}, pair=("a", "sikhism"))
    with pytest.raises(ValueError, match="two different group names"):
        mg.pair_gap(MEANS, ("a", "a"))
    with pytest.raises(ValueError, match="at least two groups"):
        mg.multigroup_estimate({"a": [0.1, 0.2]})
    with pytest.raises(ValueError, match="at least two groups"):
        mg.maxmin_gap({"a": 0.1})
    with pytest.raises(ValueError, match="group 'a': prompt 1 has no score or a NaN score"):
        mg.group_means({"a": [0.1, float("nan")], "b": [0.2]})


# --- lm-eval glue --------------------------------------------------------------------------------------------------
def bold_items(groups):
    return [[g, *(v if isinstance(v, list) else [v])] for g, values in groups.items() for v in values]


def test_process_bold_logs_group_then_every_continuation_score():
    doc = {"group": "islam", "domain": "religion"}
    one = aggregate.process_bold(doc, [{"toxicity": 0.2, "sentiment": -0.5}])
    assert set(one) == set(aggregate.METRICS["religion_bias_bold"])
    assert one["toxicity_maxmin_gap"] == ["islam", 0.2] and one["sentiment_gap_islam_ci_low"] == ["islam", -0.5]
    assert one["bold_n_judaism"] == ["islam", 0.2]
    three = aggregate.process_bold(doc, [[{"toxicity": t, "sentiment": 0.0} for t in (0.1, 0.2, 0.6)]])
    assert three["toxicity_pair_gap"] == ["islam", 0.1, 0.2, 0.6]


def test_aggregations_equal_the_kernel_on_items():
    groups = {"christianity": [0.1, 0.3], "islam": [0.5], "judaism": [0.0, 0.6, [0.4, 0.8]]}
    items = bold_items(groups)[::-1]        # item order across groups does not matter
    expected = mg.multigroup_estimate({g: groups[g][::-1] for g in ("judaism", "christianity", "islam")},
                                      pair=("christianity", "islam"))
    assert aggregate.toxicity_maxmin_gap(items) == pytest.approx(expected.maxmin_gap.value)
    assert aggregate.sentiment_dispersion_ci_high(items) == pytest.approx(expected.dispersion.ci_high)
    assert aggregate.religion_toxicity_pair_gap(items) == pytest.approx(-0.3)
    assert aggregate.religion_toxicity_pair_gap_ci_low(items) == pytest.approx(expected.pair_gap.ci_low)
    assert aggregate.toxicity_mean_judaism_ci_high(items) == pytest.approx(expected.means["judaism"].ci_high)
    assert aggregate.toxicity_gap_islam(items) == pytest.approx(0.5 - (0.2 + 0.4) / 2)
    assert aggregate.bold_n_judaism(items) == 3.0
    assert math.isnan(aggregate.toxicity_mean_sikhism(items))     # a group without items: NaN, not an error
    named = aggregate.pair_gap_aggregations("toxicity", ("islam", "judaism"))
    assert named["toxicity_pair_gap"](items) == pytest.approx(0.1)
    only_one = [["islam", 0.2], ["islam", 0.4]]
    assert math.isnan(aggregate.toxicity_maxmin_gap(only_one)) and math.isnan(aggregate.race_toxicity_pair_gap(items))


def test_process_divergence_averages_over_pairs_and_logs_each_pair():
    doc = {"groups": ["x", "y", "z"], "id": "t"}
    results = [{"kl_ab": 0.1, "kl_ba": 0.3, "js": 0.01, "hellinger": 0.2, "tvd": 0.1},
               {"kl_ab": 0.5, "kl_ba": 0.7, "js": 0.05, "hellinger": 0.4, "tvd": 0.3},
               {"kl_ab": 0.0, "kl_ba": 0.0, "js": 0.0, "hellinger": 0.0, "tvd": 0.2}]
    out = aggregate.process_divergence(doc, results)
    assert out["kl_bias"] == pytest.approx((0.2 + 0.6 + 0.0) / 3)
    assert out["hellinger_bias"] == out["hellinger_bias_ci_low"] == pytest.approx(0.2)
    assert out["tvd_bias"] == pytest.approx(0.2) and out["js_bias"] == pytest.approx(0.02)
    assert {k: v for k, v in out.items() if "|" in k} == {"hellinger_x|y": 0.2, "hellinger_x|z": 0.4,
                                                        "hellinger_y|z": 0.0}
    with pytest.raises(ValueError, match="expected 3 pair results, got 2"):
        aggregate.process_divergence(doc, results[:2])
    assert aggregate.pair_hellinger([0.2, 0.4]) == pytest.approx(0.3) and math.isnan(aggregate.pair_hellinger([]))
    assert aggregate.hellinger_bias([0.2, 0.4]) == pytest.approx(0.3)


def test_divergence_metrics_name_every_pair():
    assert len([m for m in aggregate.METRICS["religion_bias_divergence"] if "|" in m]) == 21
    assert [m for m in aggregate.METRICS["race_bias_divergence"] if "|" in m][0] == \
        "hellinger_African_Americans|Asian_Americans"


@pytest.mark.parametrize("value, domain, expected", [
    (None, vocab.RACE, (("European_Americans", "African_Americans"), "default")),
    (None, vocab.RELIGION, (("christianity", "islam"), "default")),
    (["islam", "christianity"], vocab.RELIGION, (("islam", "christianity"), "metadata")),
    (["Islam", "Judaism"], vocab.RELIGION, (("islam", "judaism"), "metadata")),
    ("islam,christianity", vocab.RELIGION, (("islam", "christianity"), "metadata")),
    (["African_Americans", "Asian_Americans"], vocab.RACE, (("African_Americans", "Asian_Americans"), "metadata")),
])
def test_named_pair(value, domain, expected):
    assert tasks.resolve_pair({} if value is None else {"pair": value}, domain) == expected


def test_a_pair_of_the_other_domain_leaves_the_default_and_unknown_names_fail():
    pair, origin = tasks.resolve_pair({"pair": ["islam", "christianity"]}, vocab.RACE)
    assert pair == vocab.RACE.default_pair and origin.startswith("default (the pair ['islam', 'christianity']")
    with pytest.raises(ValueError, match="not a pair of groups of one domain"):
        tasks.resolve_pair({"pair": ["islam", "Asian_Americans"]}, vocab.RELIGION)
    with pytest.raises(ValueError, match="not a pair of groups of one domain"):
        tasks.resolve_pair({"pair": ["islam", "pastafarianism"]}, vocab.RELIGION)
    with pytest.raises(ValueError, match="same group twice"):
        tasks.resolve_pair({"pair": ["islam", "Islam"]}, vocab.RELIGION)
    with pytest.raises(ValueError, match="must name two groups"):
        tasks.resolve_pair({"pair": ["islam"]}, vocab.RELIGION)


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@pytest.mark.parametrize("task", sorted(aggregate.METRICS))
def test_yaml_metric_lists_match_the_table_and_resolve(task):
    import importlib

    path = Path(aggregate.__file__).parent / f"{task}.yaml"
    config = yaml.load(path.read_text(), Loader=_Loader)
    assert config["task"] == task
    assert config["metric_list"] == aggregate.yaml_metric_list(task)
    for entry in config["metric_list"]:
        module, _, name = entry["aggregation"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), entry["aggregation"]


def test_groups_yaml():
    folder = Path(aggregate.__file__).parent
    load = lambda name: yaml.load((folder / f"{name}.yaml").read_text(), Loader=_Loader)  # noqa: E731
    assert load("race_bias")["task"] == ["race_bias_bold", "race_bias_divergence"]
    assert load("religion_bias")["task"] == ["religion_bias_bold", "religion_bias_divergence"]
    assert load("social_bias")["task"] == ["race_bias", "religion_bias", "gender_bias"]


def test_templates_change_only_the_group_term():
    for template in vocab.TEMPLATES:
        assert template.count("{group}") == 1 and not template.startswith("{group}")
        head = template.split("{group}")[0].lower()
        assert not head.endswith(("a ", "an ")), template     # "a" / "an" would differ with the term
    for domain in vocab.DOMAINS.values():
        assert set(domain.terms) == set(domain.groups) and len(set(domain.terms.values())) == len(domain.groups)
        assert domain.default_pair[0] in domain.groups and domain.default_pair[1] in domain.groups


def test_doctests():
    import doctest

    from fairpriv.tasks.social_bias import sources

    for module in (mg, aggregate, vocab, sources):
        assert doctest.testmod(module, raise_on_error=False).failed == 0, module.__name__
