"""`fairpriv analyze grad-norms` on two tiny-llama checkpoints (the tiny model's folder, and a perturbed copy saved
as a fairpriv artifact): the split and sample of the validation text, one per-sentence norm recomputed here with
torch.autograd, the aggregates recomputed from the per-sentence values, the artifact's facts in the report, the
PNG, and one-line refusals (exit 2) for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from fairpriv.analyze import grad_norms as gn
from fairpriv.cli import main
from fairpriv.artifacts import build_artifact

TEXT = [
    "He is an American actor. His father was a painter.",
    "She is an American actress. Her mother was a pilot.",
    "The boy ran home.",
    "The woman sang a song. The girl danced.",
    "He met her at the station.",  # mixed
    "The weather was cold.",  # neutral
    "The king and his sons rode out.",
]
MALE = ["He is an American actor.", "His father was a painter.", "The boy ran home.", "The king and his sons rode out."]
FEMALE = ["She is an American actress.", "Her mother was a pilot.", "The woman sang a song.", "The girl danced."]
CDA_STATS = {"mode": "two-sided", "ratio": 1.0, "records_in": 8}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gn-text") / "validation.txt"
    path.write_text("\n".join(TEXT) + "\n")
    return path


@pytest.fixture(scope="module")
def perturbed_artifact(tiny_model, tmp_path_factory):
    """The tiny model with every weight nudged, saved as the ``model/`` of a (hand-made) dp artifact."""

    def fit(tmp):
        model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
        torch.manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        model.save_pretrained(tmp / "model")
        AutoTokenizer.from_pretrained(tiny_model).save_pretrained(tmp / "model")
        return {"private": True, "epsilon": 3.0, "cda": CDA_STATS}

    dest = tmp_path_factory.mktemp("gn-art") / "dp-art"
    identity = {"intervention": "dp", "intervention_version": "1", "config": {}, "base_model": {}}
    build_artifact(dest, fit, identity)
    return dest


@pytest.fixture(scope="module")
def report(tiny_model, perturbed_artifact, text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("gn-out")
    code = main(["analyze", "grad-norms", "--checkpoints", str(tiny_model), str(perturbed_artifact),
                 "--text", str(text_file), "--n", "3", "--seed", "5", "--out", str(out)])
    assert code == 0
    return out, json.loads((out / gn.JSON_FILE).read_text())


def direct_l1(folder, sentence: str) -> float:
    """The gradient L1 norm of one sentence, written out here: ids = tokenizer(text) + EOS, mean cross-entropy of
    every next token, torch.autograd.grad over all parameters."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tok(sentence)["input_ids"] + [tok.eos_token_id]])
    logits = model(input_ids=ids).logits[0, :-1]
    loss = torch.nn.functional.cross_entropy(logits, ids[0, 1:])
    params = [p for p in model.parameters()]
    return float(sum(g.abs().sum(dtype=torch.float64) for g in torch.autograd.grad(loss, params)))


def test_the_validation_text_is_split_and_sampled_as_documented(report):
    _, rep = report
    val = rep["validation"]
    assert val["available"] == {"male": 4, "female": 4, "mixed": 1, "neutral": 1}
    assert val["n"] == {"male": 3, "female": 3} and val["format"] == "txt" and len(val["file_sha256"]) == 64
    assert val["sentences"] == {"male": gn.sample_group(MALE, 3, 5), "female": gn.sample_group(FEMALE, 3, 5)}


def test_one_norm_equals_a_direct_autograd_computation(report, tiny_model, perturbed_artifact):
    _, rep = report
    base, perturbed = rep["checkpoints"]
    for row, folder in ((base, tiny_model), (perturbed, perturbed_artifact / "model")):
        sentence = rep["validation"]["sentences"]["female"][1]
        assert row["female"]["values"][1] == pytest.approx(direct_l1(folder, sentence), rel=1e-6)
    assert base["female"]["values"] != perturbed["female"]["values"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert base["n_params"] == perturbed["n_params"] == sum(p.numel() for p in model.parameters())


def test_aggregates_are_recomputed_from_the_per_sentence_values(report):
    _, rep = report
    for row in rep["checkpoints"]:
        male, female = (np.array(row[g]["values"]) for g in gn.GROUPS)
        assert len(male) == len(female) == 3 and (male > 0).all() and (female > 0).all()
        assert row["male"]["mean"] == pytest.approx(male.mean()) and row["ratio"] == pytest.approx(
            female.mean() / male.mean())
        assert (row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx(gn.ratio_ci(female, male, seed=5))


def test_the_report_names_each_checkpoint_and_the_artifacts_facts(report, tiny_model, perturbed_artifact):
    out, rep = report
    base, perturbed = rep["checkpoints"]
    assert (base["label"], base["intervention"], base["identity"]["local_path"]) == (
        tiny_model.name, None, str(tiny_model.resolve()))
    assert (perturbed["label"], perturbed["private"], perturbed["epsilon"]) == ("dp+cda eps=3", True, 3.0)
    assert perturbed["cda"] == CDA_STATS and perturbed["identity"]["parent_artifact"]["intervention"] == "dp"
    table = (out / gn.MD_FILE).read_text()
    assert "| dp+cda eps=3 | yes (eps=3) | two-sided 1 |" in table and f"| {tiny_model.name} | - | - |" in table
    assert (out / gn.PNG_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_decoder_scope_sums_a_subset_of_the_parameters(tiny_model, text_file, tmp_path):
    rows = {scope: gn.run([str(tiny_model)], text=text_file, n=1, out=tmp_path / scope, params=scope)
            .report["checkpoints"][0] for scope in gn.PARAM_SCOPES}
    assert rows["decoder"]["n_params"] < rows["all"]["n_params"]
    assert 0 < rows["decoder"]["male"]["mean"] < rows["all"]["male"]["mean"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--labels", "a"], "--labels must name each of the 2 checkpoints"),
    (["--text", "missing.txt"], "missing.txt does not exist"),
    (["--n", "0"], "argument --n: 0 is not allowed; use a whole number >= 1"),
])
def test_bad_input_is_one_line_exit_2(tiny_model, perturbed_artifact, text_file, capsys, extra, message):
    args = ["analyze", "grad-norms", "--checkpoints", str(tiny_model), str(perturbed_artifact),
            "--text", str(text_file), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairpriv: error:") and message in err and err.count("\n") == 1


def test_a_missing_checkpoint_is_refused_before_any_model_loads(tmp_path, text_file, capsys):
    assert main(["analyze", "grad-norms", "--checkpoints", str(tmp_path / "nope"), "--text", str(text_file)]) == 2
    assert "is not a folder" in capsys.readouterr().err
