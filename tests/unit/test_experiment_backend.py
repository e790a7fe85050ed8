"""`fairpriv run` backends: which engine a cell runs on, its model name, fingerprints, and the split of
settings.model_args between HF and vLLM cells."""

from __future__ import annotations

import pytest

from fairpriv.experiment import runner, spec
from fairpriv.experiment.spec import SpecError
from fairpriv.tasks import group_members, likelihood_only, request_kinds

MODEL = "fairpriv:smollm2-135m-instruct-q4_1"
TASKS = ["fairness_awareness", "gender_bias_divergence", "gender_bias", "mmlu_offline_mini"]


def parse(settings=None, variants=None):
    raw = {"name": "t", "models": [MODEL], "tasks": TASKS, "variants": variants or {"dean": {"intervention": "dean"}}}
    if settings is not None:
        raw["settings"] = settings
    return spec.parse(raw)


def engines(exp, variant="dean"):
    return {c.task: (c.engine, c.lm_eval_model) for c in exp.cells if c.variant.name == variant}


def test_default_backend_is_hf_for_every_cell():
    assert engines(parse()) == {t: ("hf", "dean-hf") for t in TASKS}
    assert engines(parse(), "base") == {t: ("hf", "hf") for t in TASKS}


def test_vllm_backend_sends_the_log_likelihood_only_tasks_to_hf():
    exp = parse({"backend": "vllm"})
    assert engines(exp) == {"fairness_awareness": ("vllm", "dean-vllm"), "gender_bias_divergence": ("hf", "dean-hf"),
                            "gender_bias": ("vllm", "dean-vllm"), "mmlu_offline_mini": ("hf", "dean-hf")}
    assert engines(exp, "base")["fairness_awareness"] == ("vllm", "vllm")
    assert engines(exp, "base")["mmlu_offline_mini"] == ("hf", "hf")


def test_loglikelihood_backend_vllm_keeps_every_cell_on_vllm():
    exp = parse({"backend": "vllm", "loglikelihood_backend": "vllm"})
    assert engines(exp) == {t: ("vllm", "dean-vllm") for t in TASKS}
    assert engines(parse({"loglikelihood_backend": "vllm"})) == {t: ("hf", "dean-hf") for t in TASKS}  # hf variants


def test_a_variant_backend_overrides_the_settings():
    exp = parse({"backend": "vllm"}, {"dean": {"intervention": "dean", "backend": "hf"},
                                       "dp": {"intervention": "dp", "backend": "vllm"}})
    assert engines(exp)["fairness_awareness"] == ("hf", "dean-hf")
    assert engines(exp, "dp")["fairness_awareness"] == ("vllm", "dp-vllm")
    assert engines(exp, "base")["fairness_awareness"] == ("vllm", "vllm")


def test_hf_cells_keep_their_fingerprints_and_vllm_cells_get_new_ones():
    plain, on_vllm = parse(), parse({"backend": "vllm"})
    before = {(c.variant.name, c.task): c.fingerprint for c in plain.cells}
    after = {(c.variant.name, c.task): c.fingerprint for c in on_vllm.cells}
    for key, value in after.items():
        assert (value == before[key]) == (key[1] in ("gender_bias_divergence", "mmlu_offline_mini")), key
    # spelling out the default changes nothing
    spelled = parse({"backend": "hf", "loglikelihood_backend": "hf", "model_args": {}})
    assert [c.fingerprint for c in spelled.cells] == [c.fingerprint for c in plain.cells]


def test_request_kinds_follow_includes_tags_and_groups_of_groups():
    assert "gender_bias_divergence" in group_members()["gender_bias"]
    assert request_kinds("fairness_awareness_mc") == {"multiple_choice"}  # output_type from the included base YAML
    assert request_kinds("mmlu_offline_mini_anatomy") == {"multiple_choice"}  # from ../_template_yaml
    assert request_kinds("mmlu_offline_mini") == {"multiple_choice"}  # group of groups of tags
    assert request_kinds("general_capability") == {"multiple_choice", "loglikelihood_rolling"}
    assert request_kinds("fairness_privacy") == {"generate_until", "multiple_choice"}
    assert request_kinds("social_bias") == {"generate_until", "loglikelihood", "multiple_choice"}
    assert request_kinds("no_such_task") == frozenset() and request_kinds("general_capability_online") == frozenset()


def test_likelihood_only_tasks():
    assert likelihood_only("gender_bias_divergence") and likelihood_only("general_capability")
    assert likelihood_only("bold_wiki_perplexity") and likelihood_only("fairpriv_sanity")
    assert not likelihood_only("fairness_privacy") and not likelihood_only("gender_bias")  # some generation
    assert not likelihood_only("mmlu") and not likelihood_only("no_such_task")  # not fairpriv's: unknown


@pytest.mark.parametrize("settings, message", [
    ({"backend": "tgi"}, "settings.backend must be one of hf, vllm"),
    ({"loglikelihood_backend": "fast"}, "settings.loglikelihood_backend must be one of hf, vllm"),
    ({"model_args": "dtype=bfloat16"}, "settings.model_args must be a mapping"),
    ({"batch_size": "big"}, "a positive integer or auto"),
])
def test_bad_backend_settings_are_refused(settings, message):
    with pytest.raises(SpecError, match=message):
        parse(settings)


def test_bad_variant_backend_is_refused():
    with pytest.raises(SpecError, match=r"variants.dean.backend must be one of hf, vllm; got 'VLLM'"):
        parse(variants={"dean": {"intervention": "dean", "backend": "VLLM"}})


def test_batch_size_auto_is_accepted():
    assert parse({"batch_size": "auto"}).settings["batch_size"] == "auto"


class FakeVLLM:
    engine_keys = frozenset({"tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "batch_size",
                             "max_length"})


def test_model_args_split_between_engines():
    args = {"dtype": "bfloat16", "tensor_parallel_size": 2, "parallelize": True, "max_length": 512}
    assert runner.engine_args(args, "hf", object, True) == {"dtype": "bfloat16", "parallelize": True,
                                                              "max_length": 512}
    assert runner.engine_args(args, "vllm", FakeVLLM, True) == {"dtype": "bfloat16", "tensor_parallel_size": 2,
                                                                  "max_length": 512}


def test_vllm_keys_on_an_hf_backend_are_an_error_naming_the_fix():
    with pytest.raises(SpecError, match=r"\['tensor_parallel_size'\] are not Hugging Face model arguments .* "
                                        r"need backend: vllm"):
        runner.engine_args({"tensor_parallel_size": 2}, "hf", object, False)
