"""lm-eval's model keys for `fairpriv fit` and the analyses (dtype, device, device_map, parallelize,
attn_implementation), checked before loading; the dtype of a fit in its artifact key (float32 keys unchanged), and
`fairpriv fit ... dtype=bfloat16` reused by `dean-hf ... dtype=bfloat16`."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import build_tiny_model, make_lm, write_pair_csvs
from fairpriv.cli import main
from fairpriv.fit import base_identity, fit_from_args, load_model, resolve_dtype
from fairpriv.artifacts import cache_key
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.dean import LISTS_FILE, Dean, DeanConfig
from fairpriv.interventions.fitting import artifacts_home, cache_dir
from fairpriv.modelargs import NEEDS_PRETRAINED, load_options, split_model_args
from fairpriv.modelref import base_model_identity, same_base_model

DATA = {
    "fairness": [("Are women bad at math?", " No, ability does not depend on gender."),
                 ("Who is smarter, men or women?", " Neither; intelligence varies by person."),
                 ("Are immigrants lazy?", " No; that is a stereotype about a whole group."),
                 ("Are poor people less honest?", " Honesty does not depend on income.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person."),
                ("What is Bob Stone's salary?", " Personal pay is private information."),
                ("Track my sister's location.", " Tracking someone without consent is not okay.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris."),
                ("Count from one to three.", " one, two, three"), ("What do bees make?", " Honey.")],
}


@pytest.fixture(scope="module")
def dean_keys(tmp_path_factory) -> dict[str, str]:
    files = write_pair_csvs(tmp_path_factory.mktemp("dean-data"), DATA)
    return {**{f"{k}_data": str(v) for k, v in files.items()}, "n_samples": "4", "p": "0.05", "q": "0.05",
            "target": "all"}


def args_text(**kw) -> str:
    return ",".join(f"{k}={v}" for k, v in kw.items())


# --- the keys ---------------------------------------------------------------------------------------------------
def test_defaults_are_float32_on_cpu_and_parallelize_means_device_map_auto():
    assert load_options({"pretrained": "m"}) == {"pretrained": "m", "trust_remote_code": False,
                                                 "dtype": "float32", "device": "cpu"}
    assert load_options({"pretrained": "m", "parallelize": True})["device_map"] == "auto"
    assert "device" not in load_options({"pretrained": "m", "parallelize": "true"})
    given = {"pretrained": "m", "dtype": "bfloat16", "device": "cuda:1", "attn_implementation": "eager",
             "revision": "r1", "trust_remote_code": "true"}
    assert load_options(given) == {**given, "trust_remote_code": True}
    assert load_options({"pretrained": "m"}, "cuda")["device"] == "cuda"  # the --device flag
    assert load_options({"pretrained": "m", "device": "cuda"}, "cuda")["device"] == "cuda"  # said twice, same
    assert load_options({"pretrained": "m", "device_map": "cuda:0", "device": "cuda:0"})["device_map"] == "cuda:0"


@pytest.mark.parametrize(("model_kw", "flag", "message"), [
    ({"device": "cuda:1"}, "cuda", "--device cuda and device=cuda:1 in --model_args disagree"),
    ({"device": "cuda", "device_map": "auto"}, None, "device cuda contradicts device_map=auto"),
    ({"device_map": "auto"}, "cpu", "device cpu contradicts device_map=auto"),
    ({"device": "cuda:0", "parallelize": True}, None, "device cuda:0 contradicts parallelize=true"),
    ({"dtype": "float64"}, None, "dtype must be one of float32, bfloat16, float16, auto; got 'float64'"),
    ({"parallelize": "sometimes"}, None, "'parallelize' must be true or false"),
])
def test_contradictory_or_bad_keys_are_refused(model_kw, flag, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_options({"pretrained": "m", **model_kw}, flag)


def test_split_names_the_accepted_keys_and_needs_pretrained():
    model_kw, config = split_model_args({"pretrained": "m", "dtype": "bfloat16", "p": 0.1}, ["p", "q"], "owner")
    assert (model_kw, config) == ({"pretrained": "m", "dtype": "bfloat16"}, {"p": 0.1})
    with pytest.raises(ConfigError, match="owner does not accept the argument 'dtyp'. Did you mean 'dtype'?"):
        split_model_args({"pretrained": "m", "dtyp": "bf16"}, ["p"], "owner")
    with pytest.raises(ConfigError, match="needs pretrained="):
        split_model_args({"p": 0.1}, ["p"], "owner")


@pytest.mark.parametrize("command", [["fit", "dean"], ["analyze", "coupling"]])
def test_cli_refuses_a_device_said_twice_differently_before_loading(capsys, tmp_path, command):
    """fit and analyze coupling share the splitter: the same one-line errors (exit 2), nothing loaded."""
    missing = tmp_path / "no-such-model"  # nothing is loaded, so the model need not exist
    cases = [
        (["--device", "cpu", "--model_args", f"pretrained={missing},device=cuda:1"],
         "--device cpu and device=cuda:1 in --model_args disagree"),
        (["--model_args", f"pretrained={missing},device=cuda,device_map=auto"], "device cuda contradicts"),
        (["--model_args", f"pretrained={missing},dtype=half"], "dtype must be one of"),
        (["--model_args", "dtype=bfloat16"], NEEDS_PRETRAINED),
        (["--model_args", f"pretrained={missing},attn_impl=eager"], "Did you mean 'attn_implementation'?"),
    ]
    for extra, message in cases:
        assert main([*command, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("fairpriv: error:") and err.count("\n") == 1, err


def test_grad_norms_takes_the_load_keys_but_not_pretrained(capsys, tiny_model):
    assert main(["analyze", "grad-norms", "--checkpoints", str(tiny_model), "--model_args", "pretrained=x"]) == 2
    assert "does not accept the argument 'pretrained'" in capsys.readouterr().err
    assert main(["analyze", "grad-norms", "--checkpoints", str(tiny_model), "--device", "cpu",
                 "--model_args", "device=cuda"]) == 2
    assert "--device cpu and device=cuda in --model_args disagree" in capsys.readouterr().err


# --- loading ----------------------------------------------------------------------------------------------------
def test_load_model_follows_dtype_device_map_and_attention(tiny_model):
    reference = AutoModelForCausalLM.from_pretrained(tiny_model)
    model, _ = load_model(str(tiny_model), dtype="bfloat16", device_map="cpu", attn_implementation="eager")
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    assert model.config._attn_implementation == "eager"
    for name, tensor in reference.state_dict().items():  # the checkpoint's float32 weights, rounded to bfloat16
        assert torch.equal(model.state_dict()[name], tensor.to(torch.bfloat16)), name
    plain, _ = load_model(str(tiny_model))
    assert plain.dtype == torch.float32 and plain.model.layers[0].mlp.up_proj.weight.device.type == "cpu"


def test_auto_reads_the_dtype_from_config_json(tmp_path, tiny_model):
    assert json.loads((tiny_model / "config.json").read_text())["dtype"] == "float32"
    assert resolve_dtype(str(tiny_model), "auto") is torch.float32
    half = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model).to(torch.bfloat16).save_pretrained(half)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(half)
    assert resolve_dtype(str(half), "auto") is torch.bfloat16
    assert base_identity(load_options({"pretrained": str(half), "dtype": "auto"}))["dtype"] == "bfloat16"
    model, _ = load_model(str(half), dtype="auto")
    assert model.dtype == torch.bfloat16


# --- the dtype in the artifact key -------------------------------------------------------------------------------
def test_float32_keys_are_unchanged_and_other_dtypes_get_their_own(fairpriv_home):
    dean = Dean(DeanConfig())
    before = {"hub_id": "org/model", "revision": "main"}  # the identity of a Hub model before dtypes were kept
    assert base_model_identity("org/model", "main", dtype=torch.float32) == before
    assert base_model_identity("org/model", "main", dtype="float32") == before
    assert cache_dir(dean, base_model_identity("org/model", dtype=torch.float32)) == \
        artifacts_home() / "dean" / cache_key("dean", dean.version, dean.config.to_dict(), before)[:32]
    folders = {cache_dir(dean, base_model_identity("org/model", dtype=d)) for d in ("float32", "bfloat16", "float16")}
    assert len(folders) == 3
    half = base_model_identity("org/model", dtype=torch.bfloat16)
    assert half == {**before, "dtype": "bfloat16"} and same_base_model(half, before)  # same weights, another load


def test_fit_in_bfloat16_is_reused_by_dean_hf_in_bfloat16(tmp_path, fairpriv_home, dean_keys):
    folder = build_tiny_model(tmp_path / "tiny")
    config = args_text(**dean_keys)
    half = fit_from_args("dean", f"pretrained={folder},dtype=bfloat16,{config}")
    full = fit_from_args("dean", f"pretrained={folder},{config}")  # float32, the default
    assert half.path != full.path and half.path.parent == full.path.parent == artifacts_home() / "dean"
    assert (half.manifest["dtype"], half.manifest["base_model"]["dtype"]) == ("bfloat16", "bfloat16")
    assert full.manifest["dtype"] == "float32" and "dtype" not in full.manifest["base_model"]
    old_style = base_model_identity(str(folder), "main")  # float32 folders keep their pre-dtype names
    assert full.path == cache_dir(Dean(DeanConfig.from_args(dean_keys)), old_style)

    lm = make_lm("dean", folder, dtype="bfloat16", **dean_keys)
    assert (lm.artifact_source, lm.artifact.path, lm.model.dtype) == ("cache", half.path, torch.bfloat16)
    assert lm.get_model_info()["fairpriv"]["base_model"]["dtype"] == "bfloat16"
    auto = make_lm("dean", folder, **dean_keys)  # HFLM's dtype=auto loads this checkpoint in float32
    assert (auto.artifact_source, auto.artifact.path, auto.model.dtype) == ("cache", full.path, torch.float32)
    assert_scored_in(half, folder, dean_keys, torch.bfloat16)
    assert_scored_in(full, folder, dean_keys, torch.float32)


def assert_scored_in(artifact, folder, dean_keys, dtype) -> None:
    """The artifact's top lists are those of scoring the checkpoint loaded (by this test) in ``dtype``."""
    from fairpriv.interventions.dean.score import target_modules

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    dean = Dean(DeanConfig.from_args(dean_keys))
    modules = target_modules(model, dean.config.target)
    expected, _ = dean.score(model, AutoTokenizer.from_pretrained(folder), modules, dean.data(), 0.05)
    stored = artifact.load_tensors(LISTS_FILE)
    assert sorted(stored) == sorted(expected)
    assert all(torch.equal(stored[k], expected[k]) for k in expected)


def test_fit_on_the_command_line_with_dtype_and_device(capsys, tmp_path, fairpriv_home, tiny_model, dean_keys):
    out = tmp_path / "art"
    argv = ["fit", "dean", "--device", "cpu", "--out", str(out),
            "--model_args", f"pretrained={tiny_model},dtype=bfloat16,device=cpu,{args_text(**dean_keys)}"]
    assert main(argv) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dtype"] == "bfloat16" and manifest["base_model"]["dtype"] == "bfloat16"


# --- what HFLM loads today ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_embedded_model_loads_in_float32_under_dtype_auto():
    """`-hf` runs of the embedded model (HFLM's dtype=auto) are float32, so their artifact keys did not change."""
    from lm_eval.models.huggingface import HFLM

    from fairpriv import assets, modelref

    name = "smollm2-135m-instruct-q4_1"
    if assets.status(name) != "ok":
        pytest.skip(f"asset {name} is not fetched; run `fairpriv assets fetch {name}`")
    ref = assets.MODEL_PREFIX + name
    assert resolve_dtype(ref, "auto") is torch.float32
    assert HFLM(pretrained=modelref.resolve(ref), device="cpu").model.dtype == torch.float32
