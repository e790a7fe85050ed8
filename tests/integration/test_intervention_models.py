"""``<name>-hf`` models on a tiny random llama: the fixture plugin's ``zero-rows`` intervention end to end.

Checks values, not just that things run: which rows are zeroed (recomputed by hand from the base weights), the
manifest facts, the artifact cache, refusals of foreign or contradicting artifacts, and that lm-eval's answer
cache keeps a variant and its base apart.
"""

from __future__ import annotations

import json

import pytest
import torch

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv.artifacts import ArtifactError, build_artifact
from fairpriv.interventions.base import ConfigError

from conftest import TEST_TASKS

FRACTION = 0.25  # down_proj.weight is [hidden=32, 64]: floor(0.25 * 32) = 8 rows per layer, 2 layers


def evaluate(model, model_args, **kw):
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TEST_TASKS), include_defaults=False)
    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["fairpriv_test_toy"], task_manager=tm,
                                   device="cpu", batch_size=4, log_samples=True, **kw)


def expected_rows(base_folder, fraction=FRACTION):
    """The rows zero-rows must zero, computed here from the base weights with plain torch."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    out = {}
    for i, layer in enumerate(base.model.layers):
        w = layer.mlp.down_proj.weight.detach()
        k = int(fraction * w.shape[0])
        order = sorted(range(w.shape[0]), key=lambda r: -float(w[r].norm()))
        out[i] = sorted(order[:k])
    return base, out


def make_lm(tiny_model, **kw):
    from fairpriv.models.hf import model_class

    return model_class("zero-rows")(pretrained=str(tiny_model), device="cpu", batch_size=2, **kw)


def test_applied_model_zeroes_exactly_the_largest_norm_rows(tiny_model, fairpriv_home, fixture_plugin):
    base, rows = expected_rows(tiny_model)
    lm = make_lm(tiny_model, fraction=str(FRACTION))
    for i, layer in enumerate(lm.model.model.layers):
        w, w0 = layer.mlp.down_proj.weight, base.model.layers[i].mlp.down_proj.weight
        zero = [r for r in range(w.shape[0]) if not w[r].any()]
        assert zero == rows[i] and len(zero) == 8
        keep = [r for r in range(w.shape[0]) if r not in rows[i]]
        assert torch.equal(w[keep], w0[keep])
        assert torch.equal(layer.mlp.up_proj.weight, base.model.layers[i].mlp.up_proj.weight)
    assert lm.artifact.manifest["facts"] == {"rows_zeroed": 16, "matrices": 2}


def test_results_json_records_intervention_and_cache_reuse(tiny_model, fairpriv_home, fixture_plugin):
    args = f"pretrained={tiny_model},fraction={FRACTION}"
    first, second = evaluate("zero-rows-hf", args), evaluate("zero-rows-hf", args)
    info1, info2 = first["config"]["fairpriv"], second["config"]["fairpriv"]
    assert info1["intervention"] == "zero-rows" and info1["config"] == {"fraction": FRACTION, "module": "down_proj"}
    assert len(info1["artifact_hash"]) == 64 and info1["artifact_hash"] == info2["artifact_hash"]
    assert (info1["artifact_source"], info2["artifact_source"]) == ("fitted", "cache")
    assert info1["base_model"]["local_path"] == str(tiny_model.resolve())
    json.dumps(first["config"], default=str)  # what lm-eval writes must serialise
    assert len(list((fairpriv_home / "artifacts" / "zero-rows").iterdir())) == 1


def test_other_config_fits_another_artifact(tiny_model, fairpriv_home, fixture_plugin):
    a = make_lm(tiny_model, fraction=0.25)
    b = make_lm(tiny_model, fraction=0.5)
    assert a.artifact.hash != b.artifact.hash and b.artifact.manifest["facts"]["rows_zeroed"] == 32


def test_unknown_model_arg_lists_accepted_keys(tiny_model, fairpriv_home, fixture_plugin):
    with pytest.raises(ConfigError) as err:
        make_lm(tiny_model, fractoin=0.1)
    msg = str(err.value)
    assert "'fractoin'" in msg and "Did you mean 'fraction'?" in msg and "artifact" in msg and "pretrained" in msg


def test_invalid_config_value_is_refused_before_loading(tiny_model, fairpriv_home, fixture_plugin):
    with pytest.raises(ConfigError, match=r"fraction must be in \(0, 1\]"):
        make_lm(tiny_model, fraction=2)


def test_artifact_of_other_intervention_is_refused(tiny_model, tmp_path, fairpriv_home, fixture_plugin):
    identity = {"intervention": "dean", "intervention_version": "1", "config": {}, "base_model": {}}
    build_artifact(tmp_path / "dean-art", lambda folder: (folder / "x.bin").write_bytes(b"x") and {}, identity)
    with pytest.raises(ArtifactError, match="made by intervention 'dean', not 'zero-rows'"):
        make_lm(tiny_model, artifact=str(tmp_path / "dean-art"))


def test_fit_command_artifact_is_used_as_given(tiny_model, tmp_path, fairpriv_home, fixture_plugin, capsys):
    from fairpriv.cli import main

    out = tmp_path / "art"
    assert main(["fit", "zero-rows", "--model_args", f"pretrained={tiny_model},fraction=0.5", "--out", str(out)]) == 0
    assert 'facts: {"matrices": 2, "rows_zeroed": 32}' in capsys.readouterr().out
    lm = make_lm(tiny_model, artifact=str(out))
    assert lm.artifact_source == "given" and lm.intervention.config.fraction == 0.5
    assert lm.get_model_info()["fairpriv"]["facts"]["rows_zeroed"] == 32
    with pytest.raises(ConfigError, match="fitted with fraction=0.5.*contradicts"):
        make_lm(tiny_model, artifact=str(out), fraction=0.25)


def test_fit_command_rejects_unknown_key(tiny_model, capsys, fairpriv_home, fixture_plugin):
    from fairpriv.cli import main

    assert main(["fit", "zero-rows", "--model_args", f"pretrained={tiny_model},bogus=1"]) == 2
    assert "does not accept the argument 'bogus'" in capsys.readouterr().err


def test_in_memory_model_through_python_api(tiny_model, fairpriv_home, fixture_plugin):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    from fairpriv.models.hf import model_class

    lm = model_class("zero-rows")(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(tiny_model), fraction=0.25)
    zeroed = sum(int((~layer.mlp.down_proj.weight.any(dim=1)).sum()) for layer in lm.model.model.layers)
    assert zeroed == 16 and "in_memory_sha256" in lm.base_identity()


def test_use_cache_keeps_variant_and_base_apart(tiny_model, tmp_path, fairpriv_home, fixture_plugin):
    cache = str(tmp_path / "cache" / "lm")
    base = evaluate("hf", f"pretrained={tiny_model}", use_cache=cache)
    variant = evaluate("zero-rows-hf", f"pretrained={tiny_model},fraction=0.5", use_cache=cache)
    variant_again = evaluate("zero-rows-hf", f"pretrained={tiny_model},fraction=0.5", use_cache=cache)
    ll = lambda r: [s["resps"] for s in r["samples"]["fairpriv_test_toy"]]  # noqa: E731
    assert ll(base) != ll(variant) and ll(variant) == ll(variant_again)
    assert "fairpriv" not in base["config"]
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    salt = variant["config"]["fairpriv"]
    assert names[0] == "lm_rank0.db" and names[1].startswith("lm_rank0.fairpriv-") and len(names) == 2
    assert salt["artifact_source"] == "fitted"


def test_fit_command_without_out_fills_the_cache_the_model_reuses(tiny_model, fairpriv_home, fixture_plugin):
    from fairpriv.cli import main

    assert main(["fit", "zero-rows", "--model_args", f"pretrained={tiny_model},fraction=0.5"]) == 0
    lm = make_lm(tiny_model, fraction=0.5)
    assert lm.artifact_source == "cache" and lm.artifact.path.parent == fairpriv_home / "artifacts" / "zero-rows"
