"""fairpriv.modelref and fairpriv.modelargs: what ``pretrained=X`` means, and the one ``--model_args`` splitter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairpriv.artifacts import ArtifactError, build_artifact
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.modelargs import split_args, split_model_args
from fairpriv.modelref import EXPORT_RECORD, ModelRef, base_model_identity, resolve
from fairpriv.options import ConfigError


def model_folder(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "README.md").write_text("not hashed")
    return folder


def files_sha(folder: Path) -> str:
    return canonical_hash({name: sha256_file(folder / name) for name in ("config.json", "model.safetensors")})


def artifact(tmp_path: Path) -> Path:
    def fit(out: Path) -> dict:
        model_folder(out / "model")
        return {"zeroed": 3}

    identity = {"intervention": "sft", "intervention_version": "2", "config": {"epochs": 1},
                "base_model": {"hub_id": "gpt2", "revision": "main"}}
    return build_artifact(tmp_path / "art", fit, identity).path


def test_a_hub_id(tmp_path):
    ref = ModelRef.parse("org/model", "abc123")
    assert (ref.kind, ref.path) == ("hub", "org/model")
    assert ref.identity() == {"hub_id": "org/model", "revision": "abc123"}
    assert ModelRef.parse(str(tmp_path / "missing")).kind == "hub"  # not a folder: a Hub id, as lm-eval reads it


def test_a_local_folder_is_identified_by_its_config_and_weights(tmp_path):
    folder = model_folder(tmp_path / "m")
    ref = ModelRef.parse(str(folder))
    assert (ref.kind, ref.path) == ("local", str(folder))
    assert ref.identity() == {"local_path": str(folder.resolve()), "files_sha256": files_sha(folder)}
    (folder / "README.md").write_text("changed")  # not a weight or config file: same identity
    assert ref.identity()["files_sha256"] == files_sha(folder)


def test_an_exported_folder(tmp_path):
    folder = model_folder(tmp_path / "exported")
    (folder / EXPORT_RECORD).write_text(json.dumps({"intervention": "dean"}))
    ref = ModelRef.parse(str(folder))
    assert (ref.kind, ref.path) == ("export", str(folder))
    assert ref.identity() == {"local_path": str(folder.resolve()), "files_sha256": files_sha(folder)}


def test_an_artifact_folder_means_its_checked_model_folder(tmp_path):
    folder = artifact(tmp_path)
    ref = ModelRef.parse(str(folder))
    assert (ref.kind, ref.path) == ("artifact", str(folder / "model"))
    identity = ref.identity()
    assert identity["files_sha256"] == files_sha(folder / "model")
    parent = identity["parent_artifact"]
    assert parent["intervention"] == "sft" and parent["base_model"] == {"hub_id": "gpt2", "revision": "main"}
    assert parent["artifact_hash"] == json.loads((folder / "manifest.json").read_text())["artifact_hash"]
    (folder / "model" / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="missing or corrupt"):
        ModelRef.parse(str(folder))


def test_resolve_and_base_model_identity_use_the_same_reading(tmp_path):
    folder = model_folder(tmp_path / "m")
    assert resolve(str(folder)) == str(folder) and resolve(None) is None
    assert base_model_identity(str(folder)) == ModelRef.parse(str(folder)).identity()
    assert base_model_identity("gpt2", dtype="bfloat16") == {"hub_id": "gpt2", "revision": "main", "dtype": "bfloat16"}


def test_split_args_sorts_keys_into_groups_and_names_unknown_ones():
    config, engine = split_args({"p": 1, "seed": 2, "tensor_parallel_size": 4}, [["p", "seed"], ["seed",
                                "tensor_parallel_size"]], "model 'x-vllm'")
    assert config == {"p": 1, "seed": 2} and engine == {"seed": 2, "tensor_parallel_size": 4}  # a key shared by both
    with pytest.raises(ConfigError) as err:
        split_args({"tensor_paralel_size": 2}, [["p"], ["tensor_parallel_size"]], "model 'x-vllm'", ["artifact"])
    assert str(err.value) == ("model 'x-vllm' does not accept the argument 'tensor_paralel_size'. Did you mean "
                              "'tensor_parallel_size'? Accepted: artifact, p, tensor_parallel_size.")


def test_split_model_args_needs_pretrained_and_keeps_model_keys_apart():
    model, config = split_model_args({"pretrained": "gpt2", "dtype": "auto", "p": "0.1"}, ["p", "dtype"], "fit dean")
    assert model == {"pretrained": "gpt2", "dtype": "auto"} and config == {"p": "0.1"}
    with pytest.raises(ConfigError, match="needs pretrained"):
        split_model_args({"p": 1}, ["p"], "fit dean")
    with pytest.raises(ConfigError, match="export dean needs"):
        split_model_args({"p": 1}, ["p"], "export dean", needs_pretrained="export dean needs pretrained=")
