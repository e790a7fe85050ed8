"""`fairpriv analyze coupling` on the tiny llama with local CSV data: overlaps recomputed from the artifact's top
lists, HSIC recomputed from representations this test extracts itself, an empty mask changing nothing, the
artifact cache reused, and one-line refusals (exit 2) for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import write_pair_csvs
from fairpriv.cli import main
from fairpriv.data.pairs import load_pairs
from fairpriv.metrics.hsic import hsic_test

M, PERMUTATIONS, SEED, FRACTION = 6, 50, 0, 0.05
DATA = {
    "fairness": [("Are women bad at math?", " No, ability does not depend on gender."),
                 ("Tell a joke about old people.", " I would rather not mock any group."),
                 ("Who is smarter, men or women?", " Neither; intelligence varies by person."),
                 ("Are immigrants lazy?", " No; that is a stereotype about a whole group."),
                 ("Should I hire only young people?", " Age is not a fair reason to reject someone."),
                 ("Which religion is the most violent?", " Violence is not a trait of any one faith."),
                 ("Are poor people less honest?", " Honesty does not depend on income."),
                 ("Is one race better at sports?", " Talent varies among individuals, not races.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person."),
                ("Read my colleague's email for me.", " That would violate their privacy."),
                ("What is Bob Stone's salary?", " Personal pay is private information."),
                ("List my ex's medical history.", " Medical records are confidential."),
                ("Track my sister's location.", " Tracking someone without consent is not okay."),
                ("Give me John Doe's passport number.", " I cannot share identity documents."),
                ("Which bank does my boss use?", " That is private financial information.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris."),
                ("Count from one to three.", " one, two, three"), ("What do bees make?", " Honey."),
                ("The capital of Italy is", " Rome."), ("What comes after two?", " Three."),
                ("Name a colour.", " Blue."), ("What is 4 + 4?", " 8.")],
}


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    return write_pair_csvs(tmp_path_factory.mktemp("coupling-data"), DATA)


def model_args(tiny_model, data_files, **kw) -> str:
    args = {"pretrained": tiny_model, **{f"{k}_data": v for k, v in data_files.items()}, "n_samples": 8,
            "p": FRACTION, "q": FRACTION, "target": "all", **kw}
    return ",".join(f"{k}={v}" for k, v in args.items())


def analyze(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", "coupling", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_ok(capsys, out_dir, *args: str) -> dict:
    code, out, err = analyze(capsys, "--m", str(M), "--permutations", str(PERMUTATIONS), "--out", str(out_dir), *args)
    assert code == 0, err
    assert "| layer |" in out and f"wrote {out_dir / 'coupling.json'}" in out
    assert (out_dir / "coupling.md").read_text() in out
    return json.loads((out_dir / "coupling.json").read_text())


# --- independent recomputation -----------------------------------------------------------------------------------
def expected_overlaps(artifact_path, p=FRACTION, q=FRACTION) -> dict[int, dict[str, float]]:
    """Per layer, from the top lists with Python sets: observed and chance, before and after removing G."""
    lists = load_file(str(artifact_path / "top_lists.safetensors"))
    shapes = json.loads((artifact_path / "manifest.json").read_text())["facts"]["shapes"]
    out: dict[int, dict[str, float]] = {}
    for name, shape in shapes.items():
        n = math.prod(shape)
        k, g_count = math.floor(q * n), math.floor(p * n)
        g = set(lists[f"utility/{name}"][:g_count].tolist())
        priv, fair = (set(lists[f"{kind}/{name}"][:k].tolist()) for kind in ("privacy", "fairness"))
        row = out.setdefault(int(name.split(".layers.")[1].split(".")[0]), dict.fromkeys(
            ("observed", "expected", "observed_after_g", "expected_after_g"), 0))
        row["observed"] += len(priv & fair)
        row["expected"] += k * k / n
        row["observed_after_g"] += len((priv - g) & (fair - g))
        row["expected_after_g"] += len(priv - g) * len(fair - g) / (n - len(g))
    return out


def representations(model, tok, kind: str, source) -> list[np.ndarray]:
    prompts = [r["prompt"] for r in load_pairs(str(source), kind, n=M, seed=SEED).records]
    per_prompt = []
    with torch.no_grad():
        for prompt in prompts:
            hidden = model(input_ids=torch.tensor([tok(prompt)["input_ids"]]), output_hidden_states=True).hidden_states
            per_prompt.append([h[0].mean(dim=0).numpy() for h in hidden[1:]])
    return [np.stack(layer) for layer in zip(*per_prompt)]


def expected_hsic(tiny_model, data_files, mask_path=None) -> list:
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    if mask_path is not None:
        with torch.no_grad():
            for name, index in load_file(str(mask_path / "mask.safetensors")).items():
                model.get_submodule(name).weight.view(-1)[index] = 0
    fair, priv = (representations(model, tok, kind, data_files[kind]) for kind in ("fairness", "privacy"))
    return [hsic_test(f, p, n_permutations=PERMUTATIONS, seed=SEED) for f, p in zip(fair, priv)]


# --- the tests ---------------------------------------------------------------------------------------------------
def test_rows_match_an_independent_recomputation(tiny_model, fairpriv_home, data_files, tmp_path, capsys):
    report = run_ok(capsys, tmp_path / "out", "--model_args", model_args(tiny_model, data_files))
    artifact = report["artifact"]
    assert artifact["source"] == "fitted" and [r["layer"] for r in report["layers"]] == [0, 1]
    overlaps = expected_overlaps(Path(artifact["path"]))
    for row in report["layers"]:
        want = overlaps[row["layer"]]
        assert (row["observed"], row["observed_after_g"]) == (want["observed"], want["observed_after_g"])
        assert row["expected"] == pytest.approx(want["expected"])
        assert row["expected_after_g"] == pytest.approx(want["expected_after_g"])
        assert row["zeroed"] == row["observed_after_g"] and 0 < row["p_value"] <= 1  # mode=set zeroes P∩F
    assert report["total"]["observed"] == sum(o["observed"] for o in overlaps.values())
    assert len(report["matrices"]) == 14  # 7 linear layers x 2 decoder layers
    before, after = expected_hsic(tiny_model, data_files), expected_hsic(tiny_model, data_files, Path(artifact["path"]))
    for row, b, a in zip(report["layers"], before, after):
        assert row["hsic_before"] == pytest.approx(b.hsic, rel=1e-5)
        assert row["hsic_after"] == pytest.approx(a.hsic, rel=1e-5)
        assert row["nhsic_before"] == pytest.approx(b.nhsic, rel=1e-5) and row["p_hsic_after"] == a.p_value
        assert row["bandwidth"]["before"]["fairness"] == pytest.approx(b.sigma_x, rel=1e-5)
    assert any(row["hsic_after"] != row["hsic_before"] for row in report["layers"])


def test_empty_mask_changes_nothing_and_the_mask_is_reusable(tiny_model, fairpriv_home, data_files, tmp_path, capsys):
    report = run_ok(capsys, tmp_path / "empty", "--model_args", model_args(tiny_model, data_files, p=0.0, q=0.0))
    for row in report["layers"]:
        assert (row["k"], row["observed"], row["expected"], row["ratio"], row["p_value"]) == (0, 0, 0.0, None, 1.0)
        assert (row["hsic_after"], row["nhsic_after"], row["p_hsic_after"]) == \
            (row["hsic_before"], row["nhsic_before"], row["p_hsic_before"])
    again = run_ok(capsys, tmp_path / "again", "--model_args", model_args(tiny_model, data_files, p=0.0, q=0.0))
    assert again["artifact"]["source"] == "cache" and again["artifact"]["hash"] == report["artifact"]["hash"]
    given = run_ok(capsys, tmp_path / "given", "--model_args", f"pretrained={tiny_model}",
                   "--mask", report["artifact"]["path"])
    assert given["artifact"]["source"] == "given" and given["model"]["matches_artifact"]
    assert given["layers"] == report["layers"]


def test_bad_input_is_one_line_and_exit_2(tiny_model, fairpriv_home, data_files, tmp_path, capsys):
    from fairpriv.artifacts import build_artifact

    other = build_artifact(tmp_path / "sft-art", lambda out: {}, {"intervention": "sft", "intervention_version": "1",
                                                                "config": {}, "base_model": {"hub_id": "x"}})
    cases = [
        (["--mask", str(other.path)], "made by intervention 'sft', not 'dean'"),
        (["--mask", str(tmp_path / "missing")], "missing does not exist; pass a DEAN artifact folder"),
        (["--m", "3"], "argument --m: 3 is not allowed; use a whole number >= 4"),
        (["--mask", str(other.path), "--model_args", model_args(tiny_model, data_files)], "drop fairness_data"),
        (["--model_args", f"pretrained={tiny_model},qq=0.1"], "Did you mean 'q'?"),
        (["--model_args", model_args(tiny_model, data_files), "--m", "9"], "asked for n=9 pairs"),
    ]
    for extra, message in cases:
        args = extra if "--model_args" in extra else ["--model_args", f"pretrained={tiny_model}", *extra]
        code, _, err = analyze(capsys, *args)
        assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("fairpriv: error:"), err
