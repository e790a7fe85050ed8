"""Paired tests on --log_samples records: alignment, test choice, and statistics equal to the tasks' aggregations."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pytest

from fairpriv.metrics import awareness as aw
from fairpriv.metrics import gender_tasks as gt
from fairpriv.report import paired
from fairpriv.report.paired import compare, compare_pooled
from fairpriv.report.stats import mcnemar


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(doc_id: int, values: dict[str, Any], filter: str = "none", key: str | None = None,
           hashed: bool = True) -> dict[str, Any]:
    """One sample record as lm-eval writes it with --log_samples (a JSON round trip turns tuples into lists)."""
    doc = {"id": key or f"doc-{doc_id}", "prompt": f"prompt {key or doc_id}"}
    out = {"doc_id": doc_id, "doc": doc, "target": "", "arguments": {"gen_args_0": {"arg_0": doc["prompt"]}},
           "resps": [["..."]], "filtered_resps": ["..."], "filter": filter, "metrics": list(values)}
    if hashed:
        out.update(doc_hash=sha(json.dumps(doc)), prompt_hash=sha(doc["prompt"]), target_hash=sha(""))
    return json.loads(json.dumps({**out, **values}))


def run_of(task: str, values: list[Any], filter: str = "none", ids: list[int] | None = None,
           **kwargs) -> list[dict[str, Any]]:
    """Records of one run: ``values[i]`` is document ``ids[i]``'s value under every headline metric of ``task``."""
    metrics = [m for m in gt.METRICS.get(task, {}) if not m.endswith(("_ci_low", "_ci_high"))] or [task]
    ids = list(range(len(values))) if ids is None else ids
    return [record(i, {m: v for m in metrics}, filter, key=f"{task}-{i}", **kwargs) for i, v in zip(ids, values)]


def labels_run(labels: list[int], ids: list[int] | None = None, mc: bool = False) -> list[dict[str, Any]]:
    stats = aw.MC_STATS if mc else aw.STATS
    ids = list(range(len(labels))) if ids is None else ids
    return [record(i, {aw.metric_name(s): label for s in stats}, "none" if mc else "judged", key=f"aw-{i}")
            for i, label in zip(ids, labels)]


# --- alignment -----------------------------------------------------------------------------------------------------
def test_alignment_keeps_common_documents_only():
    base = run_of("acc", [1.0, 0.0, 1.0, 1.0], ids=[0, 1, 2, 3])
    variant = run_of("acc", [0.0, 1.0, 1.0, 0.0], ids=[2, 3, 4, 5])
    assert paired.align(base, variant, "acc") == ([1.0, 1.0], [0.0, 1.0])  # documents 2 and 3


def test_alignment_uses_doc_hash_not_position_or_doc_id():
    base = run_of("acc", [1.0, 0.0, 1.0], ids=[0, 1, 2])
    variant = list(reversed(run_of("acc", [1.0, 0.0, 1.0], ids=[0, 1, 2])))
    for i, r in enumerate(variant):  # same documents, written in another order with other doc_ids
        r["doc_id"] = 10 + i
    assert paired.align(base, variant, "acc") == ([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])


def test_alignment_falls_back_to_doc_id_without_hashes():
    base = run_of("acc", [1.0, 0.0, 1.0], hashed=False)
    variant = run_of("acc", [0.0, 0.0], ids=[1, 2], hashed=True)  # one run without hashes: doc_id for both
    assert paired.align(base, variant, "acc") == ([0.0, 1.0], [0.0, 0.0])


def test_repeated_documents_pair_in_file_order():
    base = [record(i, {"acc": v}, key="same") for i, v in enumerate([1.0, 0.0])]
    variant = [record(i, {"acc": v}, key="same") for i, v in enumerate([0.0, 0.0, 1.0])]
    assert paired.align(base, variant, "acc") == ([1.0, 0.0], [0.0, 0.0])


def test_alignment_refuses_mixed_filters_and_selects_one():
    base = run_of("acc", [1.0, 0.0], filter="a") + run_of("acc", [0.0, 0.0], filter="b")
    with pytest.raises(ValueError, match="mix filters"):
        paired.align(base, base, "acc")
    assert paired.align(base, base, "acc", filter="b") == ([0.0, 0.0], [0.0, 0.0])


def test_records_without_filter_field_match_any_filter():
    base = [{"doc_id": i, "acc": v} for i, v in enumerate([1.0, 0.0])]
    assert paired.align(base, base, "acc", filter="none") == ([1.0, 0.0], [1.0, 0.0])


def test_record_without_any_key_is_an_error():
    with pytest.raises(ValueError, match="neither doc_hash nor doc_id"):
        paired.align([{"acc": 1.0}], [{"acc": 1.0}], "acc")


# --- awareness and MMLU: McNemar -----------------------------------------------------------------------------------
BASE_LABELS = [0, 0, 1, 1, -1, 0, 1, 0, -1, 1]
VARIANT_LABELS = [0, 1, 0, 0, 0, -1, 0, 0, -1, 1]


@pytest.mark.parametrize("task", ["fairness_awareness", "privacy_awareness"])
def test_awareness_mcnemar_on_documents_judged_in_both_runs(task):
    r = compare(task, "awareness,judged", labels_run(BASE_LABELS), labels_run(VARIANT_LABELS))
    # judged in both: documents 0, 1, 2, 3, 6, 7, 9 (4 and 5 and 8 have a did-not-follow label in a run)
    assert (r.test, r.n, r.b, r.c) == ("mcnemar-exact", 7, 1, 3)  # b: doc 1 safe -> unsafe; c: docs 2, 3, 6
    kept = [0, 1, 2, 3, 6, 7, 9]
    base_rate = aw.awareness_rate([BASE_LABELS[i] for i in kept])
    variant_rate = aw.awareness_rate([VARIANT_LABELS[i] for i in kept])
    assert (r.base_value, r.variant_value) == (pytest.approx(base_rate), pytest.approx(variant_rate))
    assert r.delta == pytest.approx(variant_rate - base_rate)
    assert r.p_value == pytest.approx(mcnemar([True] + [False] * 3, [False] + [True] * 3).p_value)


def test_awareness_dnf_mcnemar_on_all_aligned_documents():
    r = compare("privacy_awareness", "awareness_dnf", labels_run(BASE_LABELS), labels_run(VARIANT_LABELS))
    assert (r.n, r.b, r.c) == (10, 1, 1)  # doc 4: -1 -> 0; doc 5: 0 -> -1; doc 8 stays -1
    assert r.delta == pytest.approx(aw.did_not_follow_rate(VARIANT_LABELS) - aw.did_not_follow_rate(BASE_LABELS))


def test_awareness_mc_has_no_dnf_test_and_nothing_judged_gives_none():
    base, variant = labels_run([0, 1, 1], mc=True), labels_run([1, 1, 0], mc=True)
    assert compare("fairness_awareness_mc", "awareness", base, variant).n == 3
    assert compare("fairness_awareness_mc", "awareness_dnf", base, variant) is None
    assert compare("fairness_awareness", "awareness", labels_run([-1, 0]), labels_run([0, -1])) is None


def test_per_axis_awareness_uses_only_documents_of_the_axis():
    base = [record(i, {"awareness": lab, "by_gender_awareness": lab if i < 3 else None}, "judged")
            for i, lab in enumerate([0, 0, 1, 1])]
    variant = [record(i, {"awareness": lab, "by_gender_awareness": lab if i < 3 else None}, "judged")
               for i, lab in enumerate([1, 0, 1, 0])]
    assert compare("fairness_awareness", "by_gender_awareness", base, variant).n == 3
    assert compare("fairness_awareness", "awareness", base, variant).n == 4


def test_mmlu_mcnemar_and_pooled_group():
    a_base, a_var = [1.0, 1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0, 1.0]
    b_base, b_var = [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]
    anatomy = ("mmlu_offline_mini_anatomy", run_of("acc", a_base), run_of("acc", a_var))
    astronomy = ("mmlu_offline_mini_astronomy", run_of("acc", b_base), run_of("acc", b_var))
    r = compare(*anatomy[:1], "acc,none", *anatomy[1:])
    assert (r.n, r.b, r.c) == (5, 1, 2)
    # the subjects' doc_ids and doc_hashes overlap: the pool aligns each subject on its own
    pooled = compare_pooled("acc,none", [anatomy, astronomy])
    assert (pooled.n, pooled.b, pooled.c) == (8, 1, 4)
    weighted = (np.mean(a_var) * 5 + np.mean(b_var) * 3) / 8  # lm-eval's weight_by_size group acc
    assert pooled.variant_value == pytest.approx(weighted)
    assert pooled.p_value == pytest.approx(mcnemar([v == 1 for v in a_base + b_base],
                                                   [v == 1 for v in a_var + b_var]).p_value)


def test_pooled_refuses_mixed_tests_and_gives_none_for_unknown_tasks(monkeypatch):
    acc = run_of("acc", [1.0, 0.0])
    assert compare_pooled("acc", [("mmlu_offline_mini_anatomy", acc, acc), ("mystery", acc, acc)]) is None
    assert compare_pooled("acc", []) is None
    monkeypatch.setattr(paired, "RULES", (("a", "acc", paired.Binary(paired.is_correct)),
                                          ("b", "acc", paired.Corpus(paired.mean))))
    with pytest.raises(ValueError, match="different tests"):
        compare_pooled("acc", [("a", acc, acc), ("b", acc, acc)])


def test_mmlu_refuses_non_binary_accuracy():
    with pytest.raises(ValueError, match="0 or 1"):
        compare("mmlu_offline_anatomy", "acc", run_of("acc", [0.5]), run_of("acc", [1.0]))


# --- perplexity: paired bootstrap of the corpus-level value ----------------------------------------------------------
def perplexity_run(chunks: list[tuple[float, int, int]]) -> list[dict[str, Any]]:
    """chunks: (loglikelihood, n_words, n_bytes), written as the task's process_results does."""
    return [record(i, {"word_perplexity": [ll, w], "byte_perplexity": [ll, b], "bits_per_byte": [ll, b],
                       "token_perplexity": [ll, 0]}, key=f"ppl-{i}") for i, (ll, w, b) in enumerate(chunks)]


BASE_CHUNKS = [(-420.5, 100, 560), (-380.0, 90, 500), (-150.25, 40, 230), (-600.0, 150, 820)]
VARIANT_CHUNKS = [(-430.0, 100, 560), (-395.5, 90, 500), (-149.0, 40, 230), (-640.0, 150, 820), (-9.0, 3, 9)]


def test_perplexity_delta_is_difference_of_corpus_perplexities():
    base, variant = perplexity_run(BASE_CHUNKS), perplexity_run(VARIANT_CHUNKS)  # variant's chunk 4 is unmatched
    words = 100 + 90 + 40 + 150
    base_ppl = math.exp((420.5 + 380.0 + 150.25 + 600.0) / words)
    variant_ppl = math.exp((430.0 + 395.5 + 149.0 + 640.0) / words)
    r = compare("bold_wiki_perplexity", "word_perplexity,none", base, variant)
    assert (r.test, r.n) == ("paired-bootstrap", 4)
    assert (r.base_value, r.variant_value) == (pytest.approx(base_ppl), pytest.approx(variant_ppl))
    assert r.delta == pytest.approx(variant_ppl - base_ppl)
    assert r.ci_low <= r.delta <= r.ci_high
    assert 0 < r.p_value <= 1


def test_bits_per_byte_and_byte_perplexity():
    base, variant = perplexity_run(BASE_CHUNKS), perplexity_run(VARIANT_CHUNKS)
    nbytes = 560 + 500 + 230 + 820
    bpb = compare("bold_wiki_perplexity", "bits_per_byte", base, variant)
    assert bpb.delta == pytest.approx((1614.5 - 1550.75) / nbytes / math.log(2))
    byte = compare("bold_wiki_perplexity", "byte_perplexity", base, variant)
    assert byte.base_value == pytest.approx(math.exp(1550.75 / nbytes))
    token = compare("bold_wiki_perplexity", "token_perplexity", base, variant)  # no tokens counted: undefined
    assert math.isnan(token.delta) and math.isnan(token.p_value)


# --- gender bias: the point statistic equals the task's aggregation ---------------------------------------------------
BOLD = [["female", 0.12], ["male", 0.3], ["female", [0.2, 0.4]], ["male", 0.05], ["female", 0.0], ["male", 0.5]]
OCCUPATION = [["female", "a nurse at the hospital"], ["male", "an engineer in town"],
              ["female", ["a teacher", "a nurse"]], ["male", "a doctor, and then"], ["male", "nothing here"],
              ["female", "a secretary"], ["male", ["a nurse", "an engineer"]]]
LIKELIHOOD = [["nurse", -4.0, -2.0, 88.0], ["nurse", -3.5, -2.5, 88.0], ["carpenter", -1.0, -3.0, 3.0],
              ["carpenter", -1.5, -2.0, 3.0], ["teacher", -2.5, -2.0, 70.0], ["engineer", -1.2, -2.2, 16.0]]
COUNT = [["he said he would", 2, 0], ["she left", 0, 1], ["the rain", 0, 0], ["his wife and her son", 2, 1],
         [["he and she", "nobody", "her"], [1, 0, 0], [1, 0, 1]]]
DIVERGENCE = [0.1, 0.25, 0.05, 0.4]
ITEMS = {"gender_bias_bold": BOLD, "gender_bias_occupation": OCCUPATION,
         "gender_bias_occupation_likelihood": LIKELIHOOD, "gender_bias_count": COUNT,
         "gender_bias_divergence": DIVERGENCE}
HEADLINE = [("gender_bias_bold", m) for m in ("toxicity_bias", "sentiment_bias", "toxicity_female", "sentiment_male")]
HEADLINE += [("gender_bias_occupation", m) for m in ("occupation_js", "occupation_tvd", "occupation_unmatched_male")]
HEADLINE += [("gender_bias_occupation_likelihood", m)
             for m in ("occupation_ll_pearson", "occupation_ll_spearman", "occupation_log_odds")]
HEADLINE += [("gender_bias_count", m) for m in ("count_ratio", "count_representation", "count_male_rate",
                                                "count_invalid_rate", "count_female_words")]
HEADLINE += [("gender_bias_divergence", m) for m in ("kl_bias_mf", "kl_bias_fm", "js_bias", "hellinger_bias",
                                                     "tvd_bias")]


@pytest.mark.parametrize("task, metric", HEADLINE)
def test_gender_point_statistic_equals_task_aggregation(task, metric):
    run = run_of(task, ITEMS[task])
    r = compare(task, metric, run, run, n_resamples=50)
    expected = getattr(gt, metric)([rec[metric] for rec in run])
    assert not math.isnan(expected)
    assert r.base_value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert (r.delta, r.p_value) == (0.0, 1.0)


def test_gender_delta_is_difference_of_aggregations():
    variant_bold = [[g, s * 2 if g == "female" and not isinstance(s, list) else s] for g, s in BOLD]
    base = run_of("gender_bias_bold", BOLD, filter="scored")
    variant = run_of("gender_bias_bold", variant_bold, filter="scored")
    r = compare("gender_bias_bold", "toxicity_bias,scored", base, variant, n_resamples=200)
    expected = gt.toxicity_bias(variant_bold) - gt.toxicity_bias(BOLD)
    assert (r.n, r.delta) == (6, pytest.approx(expected))
    assert r.ci_low <= r.delta <= r.ci_high


def test_occupation_likelihood_resamples_occupations():
    run = run_of("gender_bias_occupation_likelihood", LIKELIHOOD)
    r = compare("gender_bias_occupation_likelihood", "occupation_ll_pearson", run, run, n_resamples=100)
    assert r.n == 4  # nurse, carpenter, teacher, engineer
    assert r.n_dropped > 0  # resamples with fewer than 3 distinct occupations are undefined


def test_gender_statistic_undefined_on_one_group_is_nan():
    run = run_of("gender_bias_bold", [["female", 0.1], ["female", 0.2]])
    r = compare("gender_bias_bold", "toxicity_bias", run, run, n_resamples=20)
    assert math.isnan(r.base_value) and math.isnan(r.p_value)


# --- no test ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, metric", [
    ("gender_bias_bold", "toxicity_bias_ci_low"), ("gender_bias_bold", "toxicity_bias_ci_high"),
    ("gender_bias_bold", "bold_n_female"), ("gender_bias_occupation_likelihood", "occupation_ll_n"),
    ("gender_bias_occupation_likelihood", "occupation_ll_pearson_p"), ("fairness_awareness", "awareness_n"),
    ("fairness_awareness", "awareness_ci_low"), ("mystery_task", "acc"), ("bold_wiki_perplexity", "acc"),
    ("mmlu_offline_mini_anatomy", "acc_norm"),
])
def test_unknown_metric_gives_none(task, metric):
    run = run_of("gender_bias_bold", BOLD)
    assert paired.spec_for(task, metric) is None
    assert compare(task, metric, run, run) is None


def test_runs_without_common_documents_give_none():
    base = run_of("acc", [1.0, 0.0], ids=[0, 1])
    variant = run_of("acc", [1.0, 0.0], ids=[2, 3])
    assert compare("mmlu_offline_mini_anatomy", "acc", base, variant) is None
    assert compare("mmlu_offline_mini_anatomy", "acc", [], []) is None


def test_report_modules_import_neither_torch_nor_lm_eval():
    import subprocess
    import sys

    code = ("import sys, fairpriv.report.paired as p, fairpriv.report.stats; "
            "p.occupation_item(['female', 'a nurse']); p.count_item(['he', 1, 0]); "
            "print(sorted(m for m in ('torch', 'lm_eval', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_divergences_use_an_exact_permutation_test_on_few_pairs():
    from fairpriv.report.paired import compare

    base = [{"doc_id": i, "doc_hash": f"d{i}", "hellinger_bias": 0.1 * (i + 1)} for i in range(4)]
    moved = [{**r, "hellinger_bias": r["hellinger_bias"] + 0.05} for r in base]
    result = compare("gender_bias_divergence", "hellinger_bias", base, moved)
    assert result.test == "paired-permutation-exact" and result.delta == pytest.approx(0.05)
    assert result.p_value == pytest.approx(2 / 16)  # only "all up" and "all down" are as extreme, of 2^4
