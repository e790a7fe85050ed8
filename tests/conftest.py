"""Shared fixtures: offline settings, an isolated FAIRPRIV_HOME, and a tiny random llama-style model.

The tiny model (2 layers, hidden 32) and its byte-level BPE tokenizer are built inside the test session from a
few sentences, in well under a second, with dropout off; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Property tests draw the same examples on every run, so CI cannot fail on a lucky draw; set
# FAIRPRIV_HYPOTHESIS=explore to search with fresh random examples (then pin what it finds as a plain test).
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("fixed", derandomize=True)
    _hypothesis_settings.register_profile("explore", derandomize=False)
    _hypothesis_settings.load_profile(os.environ.get("FAIRPRIV_HYPOTHESIS", "fixed"))
except ImportError:  # hypothesis is a test extra; only the property tests need it
    pass

REPO = Path(__file__).resolve().parents[1]
TEST_TASKS = REPO / "tests" / "tasks"
CORPUS = [
    "The number after one is two, and the number after two is three.",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Question: what do bees make? Answer: honey.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
]


def build_tiny_model(folder: Path, seed: int = 0, hidden_size: int = 32, heads: int = 4) -> Path:
    """Save a random 2-layer llama model with a BPE tokenizer trained on CORPUS into ``folder`` (vLLM's CPU attention
    needs a head size of 32 or more: ``hidden_size=64, heads=2``)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
        num_attention_heads=heads, num_key_value_heads=heads // 2, max_position_embeddings=256, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, attention_dropout=0.0, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def evaluate_toy(model, model_args, **kw):
    """lm-eval's Python API on the toy test task (2 items), without indexing lm-eval's own tasks."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TEST_TASKS), include_defaults=False)
    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["fairpriv_test_toy"], task_manager=tm,
                                   device="cpu", batch_size=4, limit=2, **kw)


def make_lm(name, pretrained, **kw):
    """The ``<name>-hf`` model class, instantiated on CPU."""
    from fairpriv.models.hf import model_class

    return model_class(name)(pretrained=str(pretrained), device="cpu", batch_size=2, **kw)


def write_pair_csvs(folder: Path, data: dict[str, list[tuple[str, str]]]) -> dict[str, Path]:
    """One ``prompt,response`` CSV per kind (the DEAN release format), e.g. for DEAN's *_data= keys."""
    import csv

    paths = {}
    for kind, rows in data.items():
        paths[kind] = folder / f"{kind}.csv"
        with open(paths[kind], "w", newline="") as fh:
            csv.writer(fh).writerows([("prompt", "response"), *rows])
    return paths


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture()
def fairpriv_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "fairpriv-home"
    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def fixture_plugin() -> str:
    """The third-party fixture package (tests/plugin_fixture) must be installed: `make test` does it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("fairpriv-fixture-plugin")
    except PackageNotFoundError:
        pytest.fail("tests/plugin_fixture is not installed; run `make test` or `pip install ./tests/plugin_fixture`")
    return "zero-rows"


@pytest.fixture()
def fresh_registry(monkeypatch):
    """An intervention registry rebuilt from BUILTINS and entry points for this test only."""
    from fairpriv.interventions import registry

    monkeypatch.setattr(registry, "_registry", None)
    yield registry
