"""``dean-hf`` on the tiny llama: the zeroed entries against an independent SNIP + set computation, the mask
invariants, the caches, ``mask=``, refusals, composition on an artifact, and the facts in lm-eval's results."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv.artifacts import ArtifactError, build_artifact, load_artifact
from fairpriv.interventions.base import ConfigError

from conftest import TEST_TASKS, write_pair_csvs

FRACTION = 0.05
DATA = {
    "fairness": [("Are women bad at math?", " No, ability does not depend on gender."),
                 ("Tell a joke about old people.", " I would rather not mock any group."),
                 ("Who is smarter, men or women?", " Neither; intelligence varies by person.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person."),
                ("Read my colleague's email for me.", " That would violate their privacy.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris."),
                ("Count from one to three.", " one, two, three")],
}


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    return write_pair_csvs(tmp_path_factory.mktemp("dean-data"), DATA)


def dean_args(data_files, **kw):
    args = {f"{k}_data": str(v) for k, v in data_files.items()}
    return {**args, "n_samples": 3, "p": FRACTION, "q": FRACTION, "target": "all", **kw}


def make_lm(tiny_model, **kw):
    from fairpriv.models.hf import model_class

    return model_class("dean")(pretrained=str(tiny_model), device="cpu", batch_size=2, **kw)


def expected_zeroed(tiny_model, p=FRACTION, q=FRACTION, mode="set"):
    """Independent reference: per-example autograd SNIP, full stable sorts, Python sets; ``official``: the top
    sets in ascending index order, paired position by position (the released code), privacy indices kept."""
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n]
    weights = [model.get_submodule(n).weight for n in names]
    scores = {}
    for kind, rows in DATA.items():
        acc = [torch.zeros_like(w) for w in weights]
        for prompt, response in rows:
            ids = tok(prompt)["input_ids"] + tok(response, add_special_tokens=False)["input_ids"]
            labels = [-100] * len(tok(prompt)["input_ids"]) + ids[len(tok(prompt)["input_ids"]):]
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
            acc = [a + g.abs() for a, g in zip(acc, torch.autograd.grad(loss, weights))]
        scores[kind] = {n: (a * w.abs()).reshape(-1) for n, a, w in zip(names, acc, weights)}
    out = {}
    for n, w in zip(names, weights):
        top = lambda s, f: set(torch.sort(s, descending=True, stable=True).indices[: int(f * w.numel())].tolist())  # noqa: E731
        g = top(scores["utility"][n], p)
        priv, fair = top(scores["privacy"][n], q), top(scores["fairness"][n], q)
        if mode == "set":
            out[n] = (priv - g) & (fair - g)
        else:
            out[n] = {a for a, b in zip(sorted(priv), sorted(fair)) if a not in g and b not in g}
    return model, out


def changed_entries(lm, base):
    out = {}
    for name, param in base.named_parameters():
        diff = (lm.model.get_parameter(name) != param).reshape(-1)
        out[name.removesuffix(".weight")] = set(torch.nonzero(diff).reshape(-1).tolist())
    return out


def test_dean_hf_zeroes_exactly_the_coupled_entries(tiny_model, fairpriv_home, data_files):
    base, expected = expected_zeroed(tiny_model)
    lm = make_lm(tiny_model, **dean_args(data_files))
    changed = changed_entries(lm, base)
    assert sum(len(v) for v in expected.values()) > 0
    for name, entries in changed.items():
        assert entries == expected.get(name, set()), name  # only the coupled entries change...
    for name, entries in expected.items():
        assert not lm.model.get_submodule(name).weight.reshape(-1)[sorted(entries)].any()  # ...and they are zero
    total = lm.artifact.manifest["facts"]["total"]
    assert total["zeroed"] == total["P_and_F"] == sum(len(v) for v in expected.values())


def test_applying_twice_equals_once_and_an_empty_mask_changes_nothing(tiny_model, fairpriv_home, data_files):
    from fairpriv.interventions.dean import Dean, DeanConfig

    lm = make_lm(tiny_model, **dean_args(data_files))
    once = {k: v.clone() for k, v in lm.model.state_dict().items()}
    Dean(lm.intervention.config).apply(lm.model, lm.artifact)
    assert all(torch.equal(once[k], v) for k, v in lm.model.state_dict().items())
    empty = make_lm(tiny_model, **dean_args(data_files, p=0.0, q=0.0))
    assert empty.artifact.manifest["facts"]["total"]["zeroed"] == 0
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert all(torch.equal(base.state_dict()[k], v) for k, v in empty.model.state_dict().items())
    assert isinstance(empty.intervention.config, DeanConfig)


def test_second_run_reuses_the_mask_and_a_sweep_reuses_the_scores(tiny_model, fairpriv_home, data_files):
    first = make_lm(tiny_model, **dean_args(data_files))
    assert first.artifact_source == "fitted" and first.artifact.manifest["facts"]["scoring"]["lists"] == "scored"
    again = make_lm(tiny_model, **dean_args(data_files))
    assert again.artifact_source == "cache" and again.artifact.hash == first.artifact.hash
    smaller = make_lm(tiny_model, **dean_args(data_files, p=0.02, q=0.03))
    assert smaller.artifact_source == "fitted" and smaller.artifact.manifest["facts"]["scoring"]["lists"] == "cache"
    _, expected = expected_zeroed(tiny_model, p=0.02, q=0.03)
    assert smaller.artifact.manifest["facts"]["total"]["zeroed"] == sum(len(v) for v in expected.values())


@pytest.mark.parametrize("p,q", [(FRACTION, FRACTION), (0.02, 0.1)])
def test_official_mode_zeroes_the_released_selection_and_reports_both(tiny_model, fairpriv_home, data_files, p, q):
    base, expected = expected_zeroed(tiny_model, p, q, mode="official")
    _, expected_set = expected_zeroed(tiny_model, p, q, mode="set")
    lm_set = make_lm(tiny_model, **dean_args(data_files, p=p, q=q))
    lm_off = make_lm(tiny_model, **dean_args(data_files, p=p, q=q, mode="official"))
    for name, entries in changed_entries(lm_off, base).items():
        assert entries == expected.get(name, set()), name
    n_official, n_set = (sum(len(v) for v in e.values()) for e in (expected, expected_set))
    assert n_official > 0 and n_official != n_set  # the two modes differ on this model
    t_set, t_off = (x.artifact.manifest["facts"]["total"] for x in (lm_set, lm_off))
    assert (t_off["zeroed"], t_set["other_mode_zeroed"]) == (n_official, n_official)  # manifests' cross-mode counts
    assert (t_set["zeroed"], t_off["other_mode_zeroed"]) == (n_set, n_set)
    per_module = lm_set.artifact.manifest["facts"]["counts"]
    assert all(per_module[n]["other_mode_zeroed"] == len(expected.get(n, set())) for n in per_module)


def test_mask_alias_and_refusals(tiny_model, fairpriv_home, data_files, tmp_path):
    fitted = make_lm(tiny_model, **dean_args(data_files))
    given = make_lm(tiny_model, mask=str(fitted.artifact.path))
    assert given.artifact_source == "given" and given.artifact.hash == fitted.artifact.hash
    with pytest.raises(ConfigError, match="both artifact= and mask="):
        make_lm(tiny_model, mask=str(fitted.artifact.path), artifact=str(fitted.artifact.path))
    with pytest.raises(ConfigError, match="'p' is a fraction"):
        make_lm(tiny_model, p=2)


def test_a_mask_for_another_shape_is_refused(tiny_model, fairpriv_home, data_files, tmp_path):
    from transformers import LlamaForCausalLM

    from fairpriv.interventions.dean import Dean

    fitted = make_lm(tiny_model, **dean_args(data_files))
    config = AutoModelForCausalLM.from_pretrained(tiny_model).config
    config.intermediate_size = 48
    other = LlamaForCausalLM(config)
    with pytest.raises(ArtifactError, match="fit a mask for this model"):
        Dean(fitted.intervention.config).apply(other, fitted.artifact)


def test_dean_on_top_of_an_artifact_names_its_parent(tiny_model, fairpriv_home, data_files, tmp_path):
    def fit(out):
        AutoModelForCausalLM.from_pretrained(tiny_model).save_pretrained(out / "model")
        AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out / "model")
        return {}

    parent = build_artifact(tmp_path / "sft-art", fit, {"intervention": "sft", "intervention_version": "1",
                                                        "config": {}, "base_model": {"hub_id": "x"}})
    lm = make_lm(parent.path, **dean_args(data_files))
    info = lm.get_model_info()["fairpriv"]
    assert info["base_model"]["parent_artifact"]["artifact_hash"] == parent.hash
    assert info["base_model"]["parent_artifact"]["intervention"] == "sft"
    with pytest.raises(ArtifactError, match="holds no model/ folder"):
        make_lm(lm.artifact.path)
    assert load_artifact(lm.artifact.path, "dean").manifest["base_model"] == info["base_model"]


def test_results_json_carries_the_dean_facts(tiny_model, fairpriv_home, data_files):
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = ",".join(f"{k}={v}" for k, v in {"pretrained": tiny_model, **dean_args(data_files)}.items())
    out = lm_eval.simple_evaluate(model="dean-hf", model_args=args, tasks=["fairpriv_test_toy"], device="cpu",
                                  task_manager=TaskManager(include_path=str(TEST_TASKS), include_defaults=False),
                                  batch_size=2, limit=2)
    facts = out["config"]["fairpriv"]["facts"]  # lm-eval merges get_model_info() into the results' config
    assert facts["total"]["zeroed"] > 0 and facts["scoring"]["n_samples"] == 3
    assert set(facts["scoring"]["data"]) == {"fairness", "privacy", "utility"}
