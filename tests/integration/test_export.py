"""``fairpriv export`` on the tiny random llama, for each built-in (dean, sft, dp, cda): values, not "it runs".

* the exported folder, loaded with plain ``AutoModelForCausalLM``, gives exactly the logits of ``<name>-hf`` with
  the same artifact (the training interventions store their weights merged, DEAN zeroes float32 entries: both are
  exact); a ``bfloat16`` export holds exactly those weights cast to bfloat16;
* ``--adapter`` (LoRA fits): the folder loads with ``peft`` on the base model and gives the same logits up to float
  rounding; DEAN, whose change no adapter expresses, is refused;
* the provenance lists the sha256 of every file written, the artifact's hash, facts and base model;
* ``--model hf pretrained=EXPORT`` through lm-eval's Python API gives the log-likelihoods of ``dean-hf``;
* ``export NAME --model_args`` fits into the on-demand cache once and reuses it, and exports the same weights as
  the artifact folder fitted with ``fairpriv fit``;
* bad inputs (a non-empty folder, another export, a file, a corrupt artifact, another base model, a base folder
  that moved) are refused with the destination and the artifact left byte for byte as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv import assets, cli
from fairpriv.export import ExportError, export, export_artifact, read_provenance
from fairpriv.artifacts import ArtifactError, read_manifest

from conftest import build_tiny_model, evaluate_toy, make_lm, write_pair_csvs

SMALL = "n_samples=8,train_batch_size=4,train_max_length=160,lr=1e-3"
DEAN = "n_samples=3,p=0.05,q=0.05,target=all"
DEAN_DATA = {
    "fairness": [("Are women bad at math?", " No, ability does not depend on gender."),
                 ("Who is smarter, men or women?", " Neither; intelligence varies by person."),
                 ("Tell a joke about old people.", " I would rather not mock any group.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person."),
                ("Read my colleague's email for me.", " That would violate their privacy.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris."),
                ("Count from one to three.", " one, two, three")],
}
TEXT = ["He thanked his aunt for the gift.", "She gave her brother a book.", "The king met the queen.",
        "My father is a doctor.", "Her car is red and fast.", "They walked to the river.",
        "The weather was mild today.", "I saw her with her dog."]
IDS = torch.tensor([[5, 17, 42, 99, 7, 120, 3, 64]])
LORA_FITS = ("sft", "dp", "cda")
ASSET_HOME = assets.home()  # where the embedded model is; the fits below use a temporary FAIRPRIV_HOME


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("export-home")
        mp.setenv("FAIRPRIV_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def dean_args(tmp_path_factory):
    files = write_pair_csvs(tmp_path_factory.mktemp("dean-data"), DEAN_DATA)
    return ",".join(f"{kind}_data={path}" for kind, path in files.items()) + "," + DEAN


@pytest.fixture(scope="module")
def fit_args(tiny_model, dean_args, tmp_path_factory):
    text = tmp_path_factory.mktemp("cda-data") / "gendered.txt"
    text.write_text("\n".join(TEXT) + "\n")
    return {"dean": dean_args, "sft": SMALL, "dp": f"{SMALL},epsilon=8", "cda": f"data={text},{SMALL}"}


@pytest.fixture(scope="module")
def artifacts(tiny_model, fit_args, home, tmp_path_factory):
    """One artifact per built-in, fitted with ``fairpriv fit`` into its own folder."""
    from fairpriv.fit import fit_from_args

    root = tmp_path_factory.mktemp("artifacts")
    return {name: fit_from_args(name, f"pretrained={tiny_model},{args}", out=root / name).path
            for name, args in fit_args.items()}


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(ids).logits


def hf_logits(name, tiny_model, artifact):
    return logits(make_lm(name, tiny_model, artifact=str(artifact)).model)


def load_plain(folder, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its sha256, to show that a refusal changed nothing."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*argv):
    return cli.main(["export", *map(str, argv)])


# ---- each built-in: the exported folder is the variant ----------------------------------------------------------


@pytest.mark.parametrize("name", ["dean", "sft", "dp", "cda"])
def test_export_loads_as_a_plain_model_with_the_variants_logits(name, tiny_model, artifacts, tmp_path):
    out = export_artifact(artifacts[name], None, tmp_path / "export")
    exported, variant = logits(load_plain(out)), hf_logits(name, tiny_model, artifacts[name])
    assert torch.equal(exported, variant)
    assert not torch.allclose(exported, logits(load_plain(tiny_model)))  # the intervention changed something
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(snapshot(out))


@pytest.mark.parametrize("name", ["dean", "sft", "dp", "cda"])
def test_provenance_records_the_variant_and_every_file_written(name, tiny_model, artifacts, tmp_path):
    out = export_artifact(artifacts[name], None, tmp_path / "export")
    record, manifest = read_provenance(out, verify=True), read_manifest(artifacts[name])
    files = snapshot(out)
    assert record["files"] == {k: v for k, v in files.items() if k != "fairpriv_export.json"}
    assert (record["intervention"], record["artifact_hash"]) == (name, manifest["artifact_hash"])
    assert record["config"] == manifest["config"] and record["facts"] == manifest["facts"]
    assert record["base_model"] == manifest["base_model"] == {"local_path": str(tiny_model.resolve()),
                                                             "files_sha256": manifest["base_model"]["files_sha256"]}
    assert (record["dtype"], record["kind"], record["fairpriv_version"]) == ("float32", "merged", fairpriv.__version__)
    assert record["base_model_ref"]["loaded_from"] == str(tiny_model)
    from fairpriv.report.collect import export_block, read_export_record  # what `fairpriv report` reads back

    block = export_block(read_export_record(out))
    assert (block["intervention"], block["artifact_hash"], block["facts"]) == (name, manifest["artifact_hash"],
                                                                             manifest["facts"])


def test_dean_export_records_the_zeroed_counts_and_zeroes_exactly_the_mask(tiny_model, artifacts, tmp_path):
    out = export_artifact(artifacts["dean"], None, tmp_path / "export")
    mask, base = load_file(artifacts["dean"] / "mask.safetensors"), load_file(tiny_model / "model.safetensors")
    weights = load_file(out / "model.safetensors")
    changed = {k.removesuffix(".weight"): (weights[k] != base[k]).flatten().nonzero().flatten().tolist() for k in base}
    assert {k: v for k, v in changed.items() if v} == {k: sorted(v.tolist()) for k, v in mask.items() if v.numel()}
    assert all(float(weights[k + ".weight"].flatten()[i]) == 0.0 for k, v in mask.items() for i in v.tolist())
    zeroed = sum(int(v.numel()) for v in mask.values())
    assert read_provenance(out)["facts"]["total"]["zeroed"] == zeroed > 0


def test_bfloat16_export_holds_the_variants_weights_cast(tiny_model, artifacts, tmp_path):
    full = load_file(export_artifact(artifacts["sft"], None, tmp_path / "f32") / "model.safetensors")
    out = export_artifact(artifacts["sft"], None, tmp_path / "bf16", dtype="bfloat16")
    half = load_file(out / "model.safetensors")
    assert half.keys() == full.keys() and all(half[k].dtype == torch.bfloat16 for k in half)
    assert all(torch.equal(half[k], full[k].to(torch.bfloat16)) for k in half)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert read_provenance(out, verify=True)["dtype"] == "bfloat16"


# ---- --adapter ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LORA_FITS)
def test_adapter_folder_loads_with_peft_and_gives_the_variants_logits(name, tiny_model, artifacts, tmp_path):
    from peft import PeftModel

    out = export_artifact(artifacts[name], None, tmp_path / "adapter", adapter=True)
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["base_model_name_or_path"]) == (8, 8, str(tiny_model))
    assert not (out / "model.safetensors").exists()
    model = PeftModel.from_pretrained(load_plain(tiny_model), out).eval()
    variant = hf_logits(name, tiny_model, artifacts[name])
    torch.testing.assert_close(logits(model), variant, atol=1e-5, rtol=0)
    record = read_provenance(out, verify=True)
    assert record["kind"] == "adapter" and record["adapter"]["rank"] == 8
    assert len(record["adapter"]["modules"]) == 14  # 7 linear layers x 2 blocks: every LoRA target changed
    assert record["adapter"]["max_residual_over_rounding"] < 4


def test_adapter_factors_rebuild_the_trained_weights(tiny_model, artifacts, tmp_path):
    """B @ A of the saved adapter (scaling alpha/r = 1) is the trained weight minus the base weight."""
    out = export_artifact(artifacts["sft"], None, tmp_path / "adapter", adapter=True)
    saved = load_file(out / "adapter_model.safetensors")
    trained = load_file(artifacts["sft"] / "model" / "model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    name = "model.layers.1.mlp.down_proj"
    a, b = saved[f"base_model.model.{name}.lora_A.weight"], saved[f"base_model.model.{name}.lora_B.weight"]
    assert a.shape == (8, 64) and b.shape == (32, 8)
    torch.testing.assert_close(b @ a, trained[f"{name}.weight"] - base[f"{name}.weight"], atol=1e-7, rtol=0)


def test_adapter_of_a_dean_artifact_is_refused_and_nothing_written(artifacts, tmp_path):
    with pytest.raises(ExportError, match="method=lora.*drop --adapter"):
        export_artifact(artifacts["dean"], None, tmp_path / "adapter", adapter=True)
    assert not (tmp_path / "adapter").exists() and list(tmp_path.iterdir()) == []


# ---- through lm-eval ------------------------------------------------------------------------------------------


def test_hf_model_on_the_export_gives_dean_hfs_loglikelihoods(tiny_model, artifacts, tmp_path):
    out = export_artifact(artifacts["dean"], None, tmp_path / "export")
    plain = evaluate_toy("hf", f"pretrained={out}", log_samples=True)
    variant = evaluate_toy("dean-hf", f"pretrained={tiny_model},artifact={artifacts['dean']}", log_samples=True)
    base = evaluate_toy("hf", f"pretrained={tiny_model}", log_samples=True)

    def lls(result):
        return [float(r[0][0]) for s in result["samples"]["fairpriv_test_toy"] for r in s["resps"]]

    assert len(lls(plain)) >= 4 and lls(plain) == lls(variant) != lls(base)


# ---- the CLI, with an artifact folder or an intervention name -----------------------------------------------------


def test_cli_exports_a_variant_through_the_cache_and_matches_the_fitted_folder(tiny_model, artifacts, fit_args,
                                                                               tmp_path, monkeypatch, capsys):
    cache_home = tmp_path / "home"
    monkeypatch.setenv("FAIRPRIV_HOME", str(cache_home))
    args = f"pretrained={tiny_model},{fit_args['dean']}"
    assert run_cli("dean", "--model_args", args, "--out", tmp_path / "a") == 0
    assert run_cli("dean", "--model_args", args, "--out", tmp_path / "b") == 0
    assert len(list((cache_home / "artifacts" / "dean").iterdir())) == 1  # fitted once, then reused
    by_name, by_folder = read_provenance(tmp_path / "a"), read_provenance(export_artifact(
        artifacts["dean"], None, tmp_path / "c"))
    assert by_name["artifact_hash"] == read_provenance(tmp_path / "b")["artifact_hash"] == by_folder["artifact_hash"]
    assert by_name["files"]["model.safetensors"] == by_folder["files"]["model.safetensors"]
    assert "exported the dean artifact" in capsys.readouterr().out


def test_cli_exports_a_bfloat16_fit_from_its_own_cache_key_in_bfloat16(tiny_model, fit_args, tmp_path, monkeypatch):
    """``export NAME --model_args ...,dtype=bfloat16`` finds (or fits) the bfloat16 artifact, not the float32 one,
    and writes bfloat16 weights by default: the dtype it was fitted in."""
    cache_home = tmp_path / "home"
    monkeypatch.setenv("FAIRPRIV_HOME", str(cache_home))
    args = f"pretrained={tiny_model},{fit_args['dean']}"
    assert run_cli("dean", "--model_args", args, "--out", tmp_path / "f32") == 0
    assert run_cli("dean", "--model_args", args + ",dtype=bfloat16", "--out", tmp_path / "bf16") == 0
    assert len(list((cache_home / "artifacts" / "dean").iterdir())) == 2  # two dtypes, two artifacts
    f32, bf16 = read_provenance(tmp_path / "f32"), read_provenance(tmp_path / "bf16")
    assert (f32["dtype"], bf16["dtype"]) == ("float32", "bfloat16") and f32["artifact_hash"] != bf16["artifact_hash"]
    weights = load_file(tmp_path / "bf16" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}


def test_cli_leaves_the_same_export_as_is_and_refuses_another(artifacts, tmp_path, capsys):
    out = tmp_path / "export"
    assert run_cli(artifacts["sft"], "--out", out) == 0
    before, mtimes = snapshot(out), {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert run_cli(artifacts["sft"], "--out", out, "--dtype", "float32") == 0
    said = capsys.readouterr().out
    assert "already holds the export of the sft artifact" in said and "left as is" in said
    assert snapshot(out) == before and {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    for other in (["--dtype", "bfloat16"], ["--adapter"]):
        assert run_cli(artifacts["sft"], "--out", out, *other) == 2
        assert "already holds another export" in capsys.readouterr().err
    assert run_cli(artifacts["dean"], "--out", out) == 2
    assert snapshot(out) == before


# ---- refusals leave everything as it was ----------------------------------------------------------------------


def test_a_non_empty_folder_or_a_file_is_refused_untouched(artifacts, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and has no fairpriv_export.json.*nothing was deleted"):
        export_artifact(artifacts["dean"], None, folder)
    assert snapshot(folder) == {"notes.txt": hashlib.sha256(b"keep me").hexdigest()}
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_artifact(artifacts["dean"], None, tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]  # no temporary folder left


def test_an_empty_folder_is_filled(artifacts, tmp_path):
    (tmp_path / "empty").mkdir()
    out = export_artifact(artifacts["dean"], None, tmp_path / "empty")
    assert read_provenance(out, verify=True)["intervention"] == "dean"


def test_a_corrupt_artifact_is_refused_with_nothing_written(artifacts, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(artifacts["dean"], broken)
    mask = broken / "mask.safetensors"
    mask.write_bytes(mask.read_bytes()[:-1] + bytes([mask.read_bytes()[-1] ^ 1]))
    before = snapshot(broken)
    with pytest.raises(ArtifactError, match="missing or corrupt"):
        export_artifact(broken, None, tmp_path / "out" / "export")
    assert run_cli(broken, "--out", tmp_path / "out" / "export") == 2
    assert not (tmp_path / "out").exists() and snapshot(broken) == before


def test_another_base_model_is_refused(artifacts, tmp_path):
    other = build_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(ExportError, match="was fitted on the base model .* pretrained="):
        export_artifact(artifacts["dean"], str(other), tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_a_moved_base_folder_needs_pretrained_and_then_is_checked(tiny_model, artifacts, tmp_path):
    """The manifest is not part of the artifact's hash, so its recorded folder can be pointed elsewhere."""
    moved = tmp_path / "moved"
    shutil.copytree(artifacts["dean"], moved)
    manifest = read_manifest(moved)
    manifest["base_model"]["local_path"] = str(tmp_path / "gone")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="gone, which is not there any more; pass .* pretrained="):
        export(moved, None, tmp_path / "export")
    copy = tmp_path / "copy-of-base"
    shutil.copytree(tiny_model, copy)
    assert run_cli(moved, "--model_args", f"pretrained={copy}", "--out", tmp_path / "export") == 0
    assert torch.equal(logits(load_plain(tmp_path / "export")), logits(load_plain(
        export_artifact(artifacts["dean"], None, tmp_path / "direct"))))


def test_model_args_next_to_an_artifact_take_only_the_base_models_keys(artifacts, tmp_path, tiny_model, capsys):
    assert run_cli(artifacts["dean"], "--model_args", f"pretrained={tiny_model},p=0.5", "--out", tmp_path / "e") == 2
    assert "does not accept the argument 'p'" in capsys.readouterr().err
    assert run_cli("deen", "--model_args", f"pretrained={tiny_model}", "--out", tmp_path / "e") == 2
    assert "deen is neither an artifact folder nor an intervention" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


# ---- the embedded model -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_model_exports_from_its_asset_name(tmp_path, monkeypatch):
    """SmolLM2 (tied embeddings) fitted by name: the manifest's ``fairpriv:`` asset is the base loaded again, the
    merged export gives sft-hf's logits exactly and the adapter, on the asset's folder, the same to rounding."""
    from peft import PeftModel

    from fairpriv.modelref import resolve
    from fairpriv.fit import fit_from_args

    monkeypatch.setenv("FAIRPRIV_HOME", str(ASSET_HOME))  # the fit goes to tmp_path, not into the cache
    asset = "fairpriv:smollm2-135m-instruct-q4_1"
    art = fit_from_args("sft", f"pretrained={asset},n_samples=8,train_batch_size=4,train_max_length=64,max_steps=1",
                        out=tmp_path / "art").path
    merged = export_artifact(art, None, tmp_path / "merged")
    adapter = export_artifact(art, None, tmp_path / "adapter", adapter=True)
    assert read_provenance(merged, verify=True)["base_model_ref"]["pretrained"] == asset
    variant = hf_logits("sft", asset, art)
    assert torch.equal(logits(load_plain(merged)), variant)
    peft_model = PeftModel.from_pretrained(load_plain(resolve(asset)), adapter).eval()
    torch.testing.assert_close(logits(peft_model), variant, atol=1e-4, rtol=0)
