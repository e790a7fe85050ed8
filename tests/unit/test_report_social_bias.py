"""Race and religion in the report: the multi-group statistics against hand-computed values, the paired-test rules,
and ``fairpriv report`` on the checked-in sample results (tests/data/report/social, written by its make_fixture.py):
the new columns, their paired tests (p-values computed by hand or recomputed independently), a variant missing a
group, and a variant naming another pair."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from fairpriv.report import multigroup as mg
from fairpriv.report import paired, text
from fairpriv.report.build import build
from fairpriv.report.collect import find_runs
from fairpriv.report.main import SWEEP_COLUMNS, draw, make_report
from fairpriv.report.model import Column, Leaderboard, Row, Value
from fairpriv.report.stats import paired_bootstrap

RUNS = Path(__file__).resolve().parents[1] / "data" / "report" / "social" / "runs"
AA, AS, EA, HL = "African_Americans", "Asian_Americans", "European_Americans", "Hispanic_and_Latino_Americans"
CHR, ISL, JUD = "christianity", "islam", "judaism"

# Race toxicity of the base run, one prompt per item: group means AA .3 (3 prompts), AS .1 (2), EA .2 (2), HL .6 (1).
RACE = [(AA, 0.2), (AA, 0.4), (AA, 0.3), (EA, 0.1), (EA, 0.3), (HL, 0.6), (AS, 0.05), (AS, 0.15)]


# --- the statistics ------------------------------------------------------------------------------------------------
def test_statistics_on_four_groups_of_unequal_size():
    assert mg.group_means(RACE) == pytest.approx({AA: 0.3, AS: 0.1, EA: 0.2, HL: 0.6})
    assert mg.maxmin_gap(RACE) == pytest.approx(0.5)  # .6 - .1
    # means .3 .1 .2 .6, their mean .3: squared deviations 0 + .04 + .01 + .09 = .14, / 4 groups
    assert mg.dispersion(RACE) == pytest.approx(math.sqrt(0.035))
    assert mg.pair_gap(RACE, (EA, AA)) == pytest.approx(-0.1)
    assert mg.pair_gap(RACE, (AA, EA)) == pytest.approx(0.1)
    assert mg.group_mean(RACE, AA) == pytest.approx(0.3)
    assert mg.group_gap(RACE, HL) == pytest.approx(0.6 - (0.3 + 0.1 + 0.2) / 3)
    assert mg.group_gap(RACE, AS) == pytest.approx(0.1 - (0.3 + 0.2 + 0.6) / 3)
    assert mg.group_gap(RACE, AA) == pytest.approx(0.0, abs=1e-12)


def test_statistics_on_three_groups_with_several_continuations():
    # religion toxicity, k = 2: christianity (.1+.3)/2, (.2+.2)/2, (.5+.3)/2 -> .2 .2 .4; islam .5 .2; judaism .1
    values = [[CHR, 0.1, 0.3], [CHR, 0.2, 0.2], [CHR, 0.5, 0.3], [ISL, 0.6, 0.4], [ISL, 0.3, 0.1], [JUD, 0.0, 0.2]]
    items = [mg.bold_item(v) for v in values]
    assert [mg.bold_item([g, list(s)]) for g, *s in values] == items  # [group, [s1, s2]] reads the same
    chr_, isl, jud = 0.8 / 3, 0.35, 0.1
    assert mg.maxmin_gap(items) == pytest.approx(isl - jud)
    centre = (chr_ + isl + jud) / 3
    assert mg.dispersion(items) == pytest.approx(math.sqrt(((chr_ - centre) ** 2 + (isl - centre) ** 2
                                                           + (jud - centre) ** 2) / 3))
    assert mg.dispersion(items) == pytest.approx(0.10393492741038725)
    assert mg.pair_gap(items, (CHR, ISL)) == pytest.approx(chr_ - isl)
    assert mg.group_gap(items, JUD) == pytest.approx(jud - (chr_ + isl) / 2)
    assert mg.group_mean(items, ISL) == pytest.approx(isl)


def test_statistics_are_undefined_with_a_group_missing_or_one_group():
    groups = [AA, AS, EA, HL]
    without_hl = [x for x in RACE if x[0] != HL]
    for statistic in (mg.maxmin_gap, mg.dispersion):
        assert math.isnan(statistic(without_hl, groups))  # a resample that lost HL: not a max-min over 3 groups
        assert statistic(without_hl) == pytest.approx(statistic(without_hl, [AA, AS, EA]))
        assert math.isnan(statistic([(AA, 0.1), (AA, 0.2)]))
    assert math.isnan(mg.group_gap(without_hl, AA, groups)) and math.isnan(mg.group_gap(without_hl, HL))
    assert math.isnan(mg.group_gap([(AA, 0.1)], AA))
    assert math.isnan(mg.pair_gap(without_hl, (HL, AA))) and math.isnan(mg.group_mean(without_hl, HL))
    for bad in ([AA], "x", [AA, []]):
        with pytest.raises(ValueError, match="multi-group BOLD value"):
            mg.bold_item(bad)


def test_group_names_in_metric_suffixes_resolve():
    groups = [AA, "Hispanic_and_Latino_Americans", "christianity"]
    assert mg.resolve_group(AA, groups) == AA
    assert mg.resolve_group("african_americans", groups) == AA
    assert mg.resolve_group("Christianity", groups) == "christianity"
    assert mg.resolve_group("sikhism", groups) is None


# --- the rules -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", ["race", "religion"])
def test_every_metric_of_the_new_tasks_has_a_rule(axis):
    bold, div = f"{axis}_bias_bold", f"{axis}_bias_divergence"
    for score in ("toxicity", "sentiment"):
        assert paired.spec_for(bold, f"{score}_maxmin_gap") == paired.Groups("maxmin")
        assert paired.spec_for(bold, f"{score}_dispersion") == paired.Groups("dispersion")
        pair = paired.spec_for(bold, f"{score}_pair_gap")
        assert pair.kind == "pair" and pair.pair == (paired.RACE_PAIR if axis == "race" else paired.RELIGION_PAIR)
        assert paired.spec_for(bold, f"{score}_mean_{AA}") == paired.Groups("mean", group=AA)
        assert paired.spec_for(bold, f"{score}_gap_islam") == paired.Groups("gap", group="islam")
        for bound in ("maxmin_gap_ci_low", f"mean_{AA}_ci_high", "gap_islam_ci_low", "pair_gap_ci_high"):
            assert paired.spec_for(bold, f"{score}_{bound}") is None
    for metric in ("kl_bias", "js_bias", "hellinger_bias", "tvd_bias"):
        spec = paired.spec_for(div, metric)
        assert isinstance(spec, paired.Corpus) and spec.permutation and spec.statistic is paired.mean
    per_pair = paired.spec_for(div, "hellinger_judaism|christianity" if axis == "religion" else f"hellinger_{AA}|{EA}")
    assert per_pair.permutation and per_pair.statistic is paired.mean  # one group pair's Hellinger per template
    assert paired.spec_for(div, "kl_bias_mf") is None and paired.spec_for(div, "hellinger_bias_ci_low") is None
    assert paired.spec_for("gender_bias_divergence", "kl_bias") is None
    assert paired.spec_for("gender_bias_bold", "toxicity_maxmin_gap") is None


def test_the_pair_comes_from_the_config_metadata():
    spec = paired.spec_for("religion_bias_bold", "toxicity_pair_gap")
    assert paired.pair_of(spec, None) == (CHR, ISL) and paired.pair_of(spec, {"version": 1}) == (CHR, ISL)
    assert paired.pair_of(spec, {"pair": ["islam", "judaism"]}) == ("islam", "judaism")
    assert paired.pair_of(spec, {"pair": "islam, judaism"}) == paired.pair_of(spec, {"pair": "islam|judaism"})
    for bad in (["islam"], ["islam", "islam"], "islam", "islam,judaism,atheism", [1, 2]):
        with pytest.raises(ValueError, match="two different group names"):
            paired.pair_of(spec, {"pair": bad})
    assert paired.same_pair("religion_bias_bold", "toxicity_pair_gap,scored", {}, {"pair": [CHR, ISL]})
    assert not paired.same_pair("religion_bias_bold", "toxicity_pair_gap", {}, {"pair": [ISL, CHR]})
    assert paired.same_pair("religion_bias_bold", "toxicity_maxmin_gap", {}, {"pair": [ISL, CHR]})


# --- the sample results --------------------------------------------------------------------------------------------
def samples(variant: str, task: str) -> list[dict]:
    path = next((RUNS / variant).glob(f"samples_{task}_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def items(variant: str, task: str, metric: str) -> dict[str, tuple[str, float]]:
    """doc_hash -> (group, mean score) read straight from the file, in file order."""
    return {r["doc_hash"]: (r[metric][0], float(np.mean(r[metric][1:]))) for r in samples(variant, task)}


def common(variant: str, task: str, metric: str) -> tuple[list, list]:
    base, other = items("base", task, metric), items(variant, task, metric)
    keys = [k for k in base if k in other]
    return [base[k] for k in keys], [other[k] for k in keys]


def maxmin_over(groups):
    """An independent max-min over fixed groups (NaN when a resample lost one)."""
    def statistic(xs):
        means = {g: [s for h, s in xs if h == g] for g in groups}
        if not all(means.values()):
            return float("nan")
        values = [sum(v) / len(v) for v in means.values()]
        return max(values) - min(values)
    return statistic


def pair_over(first, second):
    def statistic(xs):
        a, b = [s for g, s in xs if g == first], [s for g, s in xs if g == second]
        return sum(a) / len(a) - sum(b) / len(b) if a and b else float("nan")
    return statistic


@pytest.mark.parametrize("task", ["race_bias_bold", "religion_bias_bold"])
@pytest.mark.parametrize("variant", ["base", "dp", "cda"])
def test_statistics_equal_the_tasks_aggregations(task, variant):
    """The report's point statistics (bound as for a test) against the task's own aggregations on the same items."""
    aggregate = pytest.importorskip("fairpriv.tasks.social_bias.aggregate")
    records = samples(variant, task)
    checked = 0
    for metric in records[0]["metrics"]:
        spec = paired.spec_for(task, metric)
        if spec is None:
            continue
        values = [r[metric] for r in records]
        corpus = paired.bind(spec, values, values)
        name = f"{task.split('_')[0]}_{metric}" if metric.endswith("pair_gap") else metric
        expected = getattr(aggregate, name)(values)
        if corpus is None:  # a group the metric names is not in this run
            assert math.isnan(expected), metric
            continue
        got = corpus.statistic([corpus.item(v) for v in values])
        assert got == pytest.approx(expected, nan_ok=True), metric
        checked += 1
    assert checked >= 10


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return build(find_runs(RUNS), tmp_path_factory.mktemp("out"))


def row(board, variant):
    return next(r for r in board.rows if r.variant == variant)


def test_columns_and_values(board):
    labels = {c.key: c.label for c in board.columns}
    assert labels["race_bias_bold/toxicity_maxmin_gap"] == "race toxicity max-min"
    assert labels["religion_bias_divergence/hellinger_bias"] == "religion Hellinger"
    assert [c.group for c in board.columns] == ["race"] * 10 + ["religion"] * 10
    assert [r.variant for r in board.rows] == ["base", "dp epsilon=8", "cda data=bold-wiki"]
    base, dp, cda = (row(board, v) for v in ("base", "dp epsilon=8", "cda data=bold-wiki"))
    expected = {  # hand-computed from make_fixture.py's scores
        "race_bias_bold/toxicity_maxmin_gap": (0.5, 0.8, 0.2),
        "race_bias_bold/sentiment_maxmin_gap": (0.7, 0.9, 0.2),
        "race_bias_bold/toxicity_dispersion": (math.sqrt(0.035), None, None),
        "race_bias_bold/toxicity_pair_gap": (-0.1, -0.2, -0.1),
        "race_bias_divergence/hellinger_bias": (0.2, 0.23, 0.19),
        "race_bias_divergence/kl_bias": (0.4, 0.46, 0.38),
        "religion_bias_bold/toxicity_maxmin_gap": (0.25, 0.45, 0.5 - 0.8 / 3),
        "religion_bias_bold/toxicity_pair_gap": (0.8 / 3 - 0.35, 0.8 / 3 - 0.55, None),
        "religion_bias_divergence/hellinger_bias": (0.25, 0.3875, 0.25),
    }
    for key, values in expected.items():
        for r, x in zip((base, dp, cda), values):
            if x is not None:
                assert r.values[key].value == pytest.approx(x), (key, r.variant)
    assert base.values["race_bias_bold/toxicity_maxmin_gap"].ci_low == pytest.approx(0.4)
    assert base.values["race_bias_bold/toxicity_maxmin_gap"].n == 8
    assert "religion_bias_bold/toxicity_pair_gap" not in cda.values  # NaN: islam is missing in that run
    assert dp.values["race_bias_bold/toxicity_maxmin_gap"].delta == pytest.approx(0.3)


def test_divergence_permutation_p_values_by_hand(board):
    dp = row(board, "dp epsilon=8")
    for metric in ("kl_bias", "js_bias", "hellinger_bias", "tvd_bias"):
        value = dp.values[f"race_bias_divergence/{metric}"]
        # all 5 templates moved up: only the identity of 2^5 sign flips reaches the observed mean, p = 2 * 1/32
        assert value.p_value == pytest.approx(2 / 32) and value.test == "paired-permutation-exact"
        # religion: deltas .1 .2 -.05 .3 (x scale); sum(s_i d_i) >= .55 for 2 of 16 sign patterns, p = 2 * 2/16
        assert dp.values[f"religion_bias_divergence/{metric}"].p_value == pytest.approx(4 / 16)
    d = [0.1, 0.2, -0.05, 0.3]
    flips = [sum(s * x for s, x in zip(signs, d)) for signs in itertools.product((1, -1), repeat=4)]
    assert 2 * min(sum(f >= sum(d) - 1e-12 for f in flips), sum(f <= sum(d) + 1e-12 for f in flips)) / 16 == 0.25


def test_bold_bootstrap_p_values_recomputed_independently(board):
    dp = row(board, "dp epsilon=8")
    cases = {
        "race_bias_bold/toxicity_maxmin_gap": maxmin_over([AA, AS, EA, HL]),
        "race_bias_bold/sentiment_maxmin_gap": maxmin_over([AA, AS, EA, HL]),
        "race_bias_bold/toxicity_pair_gap": pair_over(EA, AA),
        "religion_bias_bold/toxicity_maxmin_gap": maxmin_over([CHR, ISL, JUD]),
        "religion_bias_bold/toxicity_pair_gap": pair_over(CHR, ISL),
    }
    for key, statistic in cases.items():
        task, metric = key.split("/")
        base_items, dp_items = common("dp", task, metric)
        expected = paired_bootstrap(base_items, dp_items, statistic, seed=0)
        value = dp.values[key]
        assert value.test == "paired-bootstrap"
        assert value.p_value == pytest.approx(expected.p_value), key
        assert expected.delta == pytest.approx(value.delta)
        assert 0 < expected.p_value <= 1 and expected.n_dropped > 0  # resamples that lost the 1-prompt group
    assert dp.values["race_bias_bold/toxicity_maxmin_gap"].significant  # every resample's gap grows
    assert not dp.values["race_bias_bold/sentiment_pair_gap"].significant  # EA and AA unchanged: delta 0, p = 1
    assert dp.values["race_bias_bold/sentiment_pair_gap"].p_value == 1.0


def test_group_means_and_gaps_are_tested_through_compare():
    base, dp = samples("base", "race_bias_bold"), samples("dp", "race_bias_bold")
    base_items, dp_items = common("dp", "race_bias_bold", "toxicity_mean_African_Americans")
    result = paired.compare("race_bias_bold", f"toxicity_mean_{AA},scored", base, dp)

    def mean_aa(xs):
        scores = [s for g, s in xs if g == AA]
        return float(np.mean(scores)) if scores else math.nan

    expected = paired_bootstrap(base_items, dp_items, mean_aa, seed=0)
    assert result.base_value == pytest.approx(0.3) and result.variant_value == pytest.approx(0.4)
    assert result.p_value == pytest.approx(expected.p_value)
    gap = paired.compare("race_bias_bold", f"toxicity_gap_{HL}", base, dp)
    assert gap.base_value == pytest.approx(0.6 - 0.2)
    assert gap.variant_value == pytest.approx(0.9 - (0.4 + 0.1 + 0.2) / 3)
    spread = paired.compare("race_bias_bold", "toxicity_dispersion", base, dp)
    assert spread.base_value == pytest.approx(math.sqrt(0.035))
    assert paired.compare("race_bias_bold", "toxicity_mean_Native_Americans", base, dp) is None  # no such group
    # a task that spells the group in lower case in its metric names (the logged group keeps BOLD's spelling)
    lower = [{**r, "toxicity_mean_african_americans": r[f"toxicity_mean_{AA}"]} for r in base]
    lower_dp = [{**r, "toxicity_mean_african_americans": r[f"toxicity_mean_{AA}"]} for r in dp]
    same = paired.compare("race_bias_bold", "toxicity_mean_african_americans", lower, lower_dp)
    assert same.p_value == result.p_value and same.base_value == result.base_value


def test_a_variant_missing_a_group_is_compared_on_common_documents(board):
    cda = row(board, "cda data=bold-wiki")
    base, variant = samples("base", "race_bias_bold"), samples("cda", "race_bias_bold")
    result = paired.compare("race_bias_bold", "toxicity_maxmin_gap", base, variant)
    assert result.n == 7  # the Hispanic_and_Latino_Americans prompt is absent from the variant
    assert result.base_value == pytest.approx(0.2) and result.delta == pytest.approx(0.0)  # AA .3 - AS .1, unchanged
    assert result.p_value == 1.0 and cda.values["race_bias_bold/toxicity_maxmin_gap"].p_value == 1.0
    assert paired.compare("race_bias_bold", f"toxicity_mean_{HL}", base, variant) is None
    # religion: islam missing, judaism's toxicity up from .1 to .5
    base, variant = samples("base", "religion_bias_bold"), samples("cda", "religion_bias_bold")
    result = paired.compare("religion_bias_bold", "toxicity_maxmin_gap", base, variant)
    assert result.n == 4 and result.base_value == pytest.approx(0.8 / 3 - 0.1)
    assert result.variant_value == pytest.approx(0.5 - 0.8 / 3)
    expected = paired_bootstrap(*common("cda", "religion_bias_bold", "toxicity_maxmin_gap"), maxmin_over([CHR, JUD]))
    assert result.p_value == pytest.approx(expected.p_value)
    assert paired.compare("religion_bias_bold", "toxicity_pair_gap", base, variant) is None  # islam not in common
    assert paired.compare("religion_bias_bold", f"toxicity_gap_{ISL}", base, variant) is None


def test_a_pair_named_in_the_metadata_is_used_and_different_pairs_are_not_compared(tmp_path):
    base, dp = samples("base", "religion_bias_bold"), samples("dp", "religion_bias_bold")
    named = paired.compare("religion_bias_bold", "toxicity_pair_gap", base, dp, metadata={"pair": [ISL, JUD]},
                           variant_metadata={"pair": ["Islam", "Judaism"]})
    assert named.base_value == pytest.approx(0.35 - 0.1) and named.variant_value == pytest.approx(0.55 - 0.1)
    assert paired.compare("religion_bias_bold", "toxicity_pair_gap", base, dp, metadata={"pair": [ISL, JUD]},
                          variant_metadata={}) is None
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    results = next((copy / "dp").glob("results_*.json"))
    data = json.loads(results.read_text())
    data["configs"]["religion_bias_bold"]["metadata"]["pair"] = [JUD, CHR]
    results.write_text(json.dumps(data))
    dp_row = row(build(find_runs(copy), tmp_path / "out"), "dp epsilon=8")
    value = dp_row.values["religion_bias_bold/toxicity_pair_gap"]
    assert value.delta is None and value.p_value is None and value.significant is None
    assert dp_row.values["religion_bias_bold/toxicity_maxmin_gap"].p_value is not None


def test_markdown_csv_latex_html_and_compact_table(tmp_path):
    result = make_report(RUNS, tmp_path / "lb")
    names = sorted(p.relative_to(tmp_path / "lb").as_posix() for p in result.written)
    assert names == ["index.html", "leaderboard-full.md", "leaderboard.csv", "leaderboard.md", "leaderboard.tex"]
    compact = (tmp_path / "lb" / "leaderboard.md").read_text().splitlines()[0]
    assert compact == ("| model | variant | race toxicity max-min | race sentiment max-min | race Hellinger "
                       "| religion toxicity max-min | religion sentiment max-min | religion Hellinger "
                       "| DP ε | DP δ | accountant | data |")
    full = (tmp_path / "lb" / "leaderboard-full.md").read_text()
    for label in ("race toxicity SD", "race sentiment pair gap", "race KL", "race JS", "race TVD",
                  "religion toxicity SD", "religion KL"):
        assert f"| {label} |" in full
    assert "| 0.800 [0.700, 0.900] Δ+0.300* |" in full
    rows = list(csv.DictReader(io.StringIO((tmp_path / "lb" / "leaderboard.csv").read_text())))
    assert float(rows[1]["race_bias_divergence/hellinger_bias:p_value"]) == pytest.approx(2 / 32)
    assert rows[1]["race_bias_divergence/hellinger_bias:test"] == "paired-permutation-exact"
    assert rows[2]["religion_bias_bold/toxicity_pair_gap:value"] == ""
    tex = (tmp_path / "lb" / "leaderboard.tex").read_text()
    assert "race toxicity max-min" in tex and "religion Hellinger" in tex and "race toxicity SD" not in tex
    page = (tmp_path / "lb" / "index.html").read_text()
    assert '<th colspan="10" class="group">race</th><th colspan="10" class="group">religion</th>' in page
    assert text.markdown(result.board).count("\n| fairpriv:") == 3


def test_sweep_curves_show_the_race_and_religion_gaps():
    keys = ["race_bias_bold/toxicity_maxmin_gap", "religion_bias_bold/toxicity_maxmin_gap"]
    assert set(keys) <= set(SWEEP_COLUMNS)
    columns = [Column(k, k.split("/")[0], k.split("_")[0], False) for k in keys]
    v = lambda x: Value(x, x - 0.05, x + 0.05, delta=None)  # noqa: E731
    rows = [Row("m", "base", None, values={k: v(0.3) for k in keys}),
            *(Row("m", f"dp epsilon={e}", "dp", values={k: v(0.3 + e / 100) for k in keys}, sweep=("epsilon", e))
              for e in (1.0, 8.0))]
    figures = draw(Leaderboard(columns, rows))
    assert list(figures) == ["sweep-m-dp-epsilon"] and figures["sweep-m-dp-epsilon"].startswith(b"\x89PNG")
    from fairpriv.report.plots import sweep_figures

    (_, fig), = sweep_figures(Leaderboard(columns, rows), keys)
    gids = {line.get_gid() for ax in fig.axes for line in ax.get_lines()}
    assert {f"base:{k}" for k in keys} <= gids
