"""The model-free pieces of ``fairpriv export``: the low-rank factoring behind ``--adapter``, the export key, the
destination rules, the provenance file, the atomic write, the base model a manifest names and the CLI flags."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from fairpriv import cli
from fairpriv.export import (PROVENANCE, Base, ExportError, _write, base_from_args, check_dtype, destination_state,
                             export_key, fitted_dtype, low_rank_factors, read_provenance, recorded_base)
from fairpriv.hashing import sha256_file
from fairpriv.interventions.base import ConfigError

KEY = export_key("a" * 64, "float32", False)


def write_export(folder, key=KEY, files=None):
    """A folder that looks like an export: some files and a provenance record listing their sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"model.safetensors": "weights", "config.json": "{}"}).items():
        (folder / name).write_text(text)
    listed = {p.name: sha256_file(p) for p in folder.iterdir()}
    record = {"fairpriv_export": 1, "export_key": key, "files": listed, "intervention": "dean",
              "artifact_hash": "a" * 64, "dtype": "float32", "kind": "merged"}
    (folder / PROVENANCE).write_text(json.dumps(record))
    return record


def contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---- low_rank_factors ---------------------------------------------------------------------------------------


def test_a_rank_two_matrix_is_factored_exactly():
    u = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, -1.0, 2.0, 0.5], [0.0, 2.0, 1.0, -1.0]], dtype=torch.float64)
    delta = u @ v
    b, a, residual = low_rank_factors(delta, 2)
    assert b.shape == (3, 2) and a.shape == (2, 4)
    torch.testing.assert_close(b @ a, delta, atol=1e-12, rtol=0)
    assert residual < 1e-12


def test_the_residual_is_what_the_best_lower_rank_leaves():
    """The identity 3x3 at rank 1: two unit singular values are left out, so the residual is sqrt(2)."""
    b, a, residual = low_rank_factors(torch.eye(3, dtype=torch.float64), 1)
    assert residual == pytest.approx(math.sqrt(2), abs=1e-12)
    assert float((b @ a).trace()) == pytest.approx(1.0, abs=1e-12)  # a rank-1 projector


def test_singular_values_are_split_evenly_between_the_factors():
    delta = torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # one singular value, 4
    b, a, _ = low_rank_factors(delta, 1)
    assert abs(float(b[0, 0])) == pytest.approx(2.0) and abs(float(a[0, 0])) == pytest.approx(2.0)


def test_a_matrix_narrower_than_the_rank_is_padded_with_zero_directions():
    delta = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    b, a, residual = low_rank_factors(delta, 4)
    assert b.shape == (3, 4) and a.shape == (4, 2) and residual < 1e-12
    assert not b[:, 2:].any() and not a[2:].any()



def test_a_large_low_rank_matrix_is_recovered_by_the_randomized_svd():
    """600 x 900 of rank 8 plus noise: the 16-wide randomized SVD leaves no more than the noise (which bounds what
    the best rank-8 approximation leaves), and the factors are the same on every call (seeded)."""
    g = torch.Generator().manual_seed(1)
    low = torch.randn(600, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 900, generator=g, dtype=torch.float64)
    noise = 1e-9 * torch.randn(600, 900, generator=g, dtype=torch.float64)
    b, a, residual = low_rank_factors(low + noise, 8)
    assert residual <= float(noise.norm())
    torch.testing.assert_close(b @ a, low, atol=1e-8, rtol=0)
    assert torch.equal(low_rank_factors(low + noise, 8)[0], b)

# ---- keys, dtypes -------------------------------------------------------------------------------------------


def test_the_export_key_separates_artifact_dtype_and_format():
    keys = {export_key(h, d, ad) for h in ("a" * 64, "b" * 64) for d in ("float32", "bfloat16") for ad in (False, True)}
    assert len(keys) == 8 and export_key("a" * 64, "float32", False) == KEY


def test_dtype_must_be_one_of_three_and_defaults_to_the_fitted_one():
    with pytest.raises(ExportError, match="'fp16' is not one of bfloat16, float16, float32"):
        check_dtype("fp16")
    assert check_dtype(None) is None and check_dtype("float16") == "float16"
    assert fitted_dtype({"facts": {}}) == "float32"
    assert fitted_dtype({"facts": {"dtype": "torch.bfloat16"}}) == "bfloat16"
    assert fitted_dtype({"dtype": "float16", "facts": {}}) == "float16"


# ---- destination ----------------------------------------------------------------------------------------------


def test_absent_and_empty_destinations_are_written(tmp_path):
    assert destination_state(tmp_path / "new", KEY) == "absent"
    (tmp_path / "empty").mkdir()
    assert destination_state(tmp_path / "empty", KEY) == "empty"


def test_the_same_intact_export_is_kept(tmp_path):
    write_export(tmp_path / "e")
    assert destination_state(tmp_path / "e", KEY) == "same"
    assert destination_state(tmp_path / "e", None) == "same"  # before the key is known: any intact export


@pytest.mark.parametrize("setup, message", [
    (lambda d: (d.mkdir(), (d / "notes.txt").write_text("mine")), "not empty and has no fairpriv_export.json"),
    (lambda d: write_export(d, key=export_key("a" * 64, "bfloat16", False)),
     r"already holds another export \(dean artifact aaaaaaaaaaaaaaaa, float32, merged\)"),
    (lambda d: (write_export(d), (d / "model.safetensors").write_text("edited")),
     "model.safetensors is missing or changed since the export"),
    (lambda d: (d.mkdir(), (d / PROVENANCE).write_text("{not json")), "its fairpriv_export.json is unreadable"),
    (lambda d: d.write_text("a file"), "is a file, not a folder"),
])
def test_other_destinations_are_refused_untouched(tmp_path, setup, message):
    dest = tmp_path / "dest"
    setup(dest)
    before = contents(dest) if dest.is_dir() else dest.read_bytes()
    with pytest.raises(ExportError, match=message):
        destination_state(dest, KEY)
    assert (contents(dest) if dest.is_dir() else dest.read_bytes()) == before


# ---- provenance ---------------------------------------------------------------------------------------------


def test_read_provenance(tmp_path):
    assert read_provenance(tmp_path) is None
    record = write_export(tmp_path / "e")
    assert read_provenance(tmp_path / "e", verify=True) == record
    (tmp_path / "e" / "config.json").write_text('{"changed": 1}')
    assert read_provenance(tmp_path / "e") == record  # not verified unless asked
    with pytest.raises(ExportError, match="config.json is missing or changed .* remove .* and export again"):
        read_provenance(tmp_path / "e", verify=True)
    (tmp_path / "e" / PROVENANCE).write_text(json.dumps({"fairpriv_export": 99, "files": {}}))
    with pytest.raises(ExportError, match="not a fairpriv export record"):
        read_provenance(tmp_path / "e")


# ---- the atomic write -----------------------------------------------------------------------------------------


def test_a_failed_build_leaves_nothing_not_even_the_parents_it_made(tmp_path):
    def build(tmp):
        (tmp / "model.safetensors").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        _write(tmp_path / "a" / "b" / "out", KEY, build)
    assert list(tmp_path.iterdir()) == []


def test_a_build_is_renamed_into_place_complete(tmp_path):
    def build(tmp):
        return write_export(tmp)

    done = _write(tmp_path / "out", KEY, build)
    assert done.created and done.path == tmp_path / "out" and sorted(os.listdir(tmp_path)) == ["out"]
    assert read_provenance(tmp_path / "out", verify=True)["export_key"] == KEY


def test_a_destination_filled_meanwhile_is_kept(tmp_path):
    dest = tmp_path / "out"

    def build(tmp):
        dest.mkdir()
        (dest / "notes.txt").write_text("someone else's")
        return write_export(tmp)

    with pytest.raises(ExportError, match="not empty"):
        _write(dest, KEY, build)
    assert contents(dest) == {"notes.txt": b"someone else's"} and sorted(os.listdir(tmp_path)) == ["out"]


def test_a_concurrent_identical_export_is_accepted(tmp_path):
    dest = tmp_path / "out"

    def build(tmp):
        write_export(dest)  # another process finished the same export first
        return write_export(tmp)

    done = _write(dest, KEY, build)
    assert not done.created and sorted(os.listdir(tmp_path)) == ["out"]


# ---- the base model a manifest names --------------------------------------------------------------------------


def test_recorded_base_models(tmp_path):
    assert recorded_base({"base_model": {"fairpriv_asset": "fairpriv:m", "asset": "m"}}) == Base("fairpriv:m")
    assert recorded_base({"base_model": {"hub_id": "org/m", "revision": "abc"}}) == Base("org/m", "abc")
    assert recorded_base({"base_model": {"local_path": str(tmp_path)}}) == Base(str(tmp_path))
    parent = {"parent_artifact": {"path": str(tmp_path)}, "files_sha256": "x"}
    assert recorded_base({"base_model": parent}) == Base(str(tmp_path))


@pytest.mark.parametrize("ident, message", [
    ({"local_path": "/nowhere/model"}, "the folder /nowhere/model, which is not there any more; pass"),
    ({"in_memory_sha256": "ab"}, "no loadable model .* pretrained="),
    ({"hub_id": "org/m", "peft": "adapter"}, "with an adapter .* plain base models only"),
])
def test_unloadable_base_models_ask_for_pretrained(ident, message):
    with pytest.raises(ExportError, match=message):
        recorded_base({"base_model": ident})


def test_model_args_next_to_an_artifact_name_only_the_base_model():
    assert base_from_args(None) is None and base_from_args("") is None
    assert base_from_args("pretrained=m,revision=r,trust_remote_code=true") == Base("m", "r", True)
    with pytest.raises(ConfigError, match="does not accept the argument 'p'.*config comes from the artifact"):
        base_from_args("pretrained=m,p=0.1")
    with pytest.raises(ConfigError, match="pretrained="):
        base_from_args("revision=r")


# ---- CLI flags ------------------------------------------------------------------------------------------------


def test_cli_flags_are_checked_before_anything_runs(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--dtype", "fp16"]) == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    assert cli.main(["export", "dean", "--out", str(tmp_path / "o")]) == 2
    assert "needs --model_args pretrained=" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
