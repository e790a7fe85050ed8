"""DEAN scoring on the tiny llama: SNIP values against an independent per-example gradient computation, the
one-backward procedure against the layer-by-layer reference, and the module/tied-weight rules."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from fairpriv.interventions.dean import score as _dean_score
from fairpriv.interventions.dean.score import (
    ScoringError,
    accumulate_abs_grads,
    accumulate_abs_grads_autograd,
    encode_all,
    encode_example,
    layerwise_scores,
    target_modules,
    example_loss,
    top_lists,
)
from fairpriv.interventions.dean.select import topk_stable

RECORDS = [
    {"prompt": "The capital of France is", "response": " Paris."},
    {"prompt": "Question: what do bees make?", "response": " Answer: honey."},
    {"prompt": "0 1 2 3", "response": " 4 5 6 7 8"},
]


@pytest.fixture(scope="module")
def model_and_tok(tiny_model):
    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def test_labels_cover_the_response_tokens_only(model_and_tok):
    _, tok = model_and_tok
    ex = encode_example(tok, "The capital of France is", " Paris.", chat_template=False, max_length=64)
    n_prompt = len(tok("The capital of France is")["input_ids"])
    assert ex.labels[:n_prompt].tolist() == [-100] * n_prompt
    assert ex.labels[n_prompt:].tolist() == ex.input_ids[n_prompt:].tolist() == tok(" Paris.")["input_ids"]


def test_truncation_that_removes_the_response_drops_the_example(model_and_tok):
    _, tok = model_and_tok
    kept, dropped = encode_all(tok, RECORDS, chat_template=False, max_length=3)
    assert dropped == 3 and kept == []
    kept, dropped = encode_all(tok, RECORDS, chat_template=False, max_length=64)
    assert dropped == 0 and len(kept) == 3


def test_accumulated_scores_equal_the_sum_of_per_example_absolute_gradients(model_and_tok):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, RECORDS, False, 64)
    modules = target_modules(model, "all")
    acc = accumulate_abs_grads(model, modules, examples)
    name = "model.layers.1.mlp.down_proj"
    weight = modules[name].weight
    expected = torch.zeros_like(weight)
    for ex in examples:  # independent: torch.autograd.grad on an HF-computed loss
        out = model(input_ids=ex.input_ids[None], labels=ex.labels[None])
        expected += torch.autograd.grad(out.loss, weight)[0].abs()
    assert torch.allclose(acc[name], expected, rtol=1e-5, atol=1e-8)
    assert acc[name].dtype == torch.float32 and float(acc[name].sum()) > 0
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_and_mode_are_restored(model_and_tok):
    model, tok = model_and_tok
    model.lm_head.weight.requires_grad_(False)
    model.train()
    examples, _ = encode_all(tok, RECORDS[:1], False, 64)
    accumulate_abs_grads(model, target_modules(model, "mlp"), examples)
    assert model.training and not model.lm_head.weight.requires_grad
    assert model.model.layers[0].mlp.up_proj.weight.requires_grad
    model.lm_head.weight.requires_grad_(True)
    model.eval()


def test_one_backward_top_lists_equal_the_layer_by_layer_reference(model_and_tok):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, RECORDS, False, 64)
    modules = target_modules(model, "all")
    k_of = lambda n: n // 50  # noqa: E731
    fast = top_lists(model, modules, examples, k_of)
    reference = {n: topk_stable(s, k_of(s.numel())) for n, s in layerwise_scores(model, modules, examples).items()}
    assert fast.keys() == reference.keys() and len(fast) == 14
    assert all(torch.equal(fast[n], reference[n]) for n in fast)


def test_target_modules_select_mlp_attn_or_all(model_and_tok):
    model, _ = model_and_tok
    mlp, attn, every = (sorted(target_modules(model, t)) for t in ("mlp", "attn", "all"))
    assert mlp == [f"model.layers.{i}.mlp.{m}" for i in (0, 1) for m in ("down_proj", "gate_proj", "up_proj")]
    assert attn == [f"model.layers.{i}.self_attn.{m}" for i in (0, 1) for m in ("k_proj", "o_proj", "q_proj", "v_proj")]
    assert sorted(mlp + attn) == every
    with pytest.raises(ScoringError, match="target must be one of mlp, attn, all"):
        target_modules(model, "embeddings")


def test_a_target_sharing_its_weight_with_the_embeddings_is_refused(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.model.layers[0].mlp.down_proj.weight = model.lm_head.weight  # tied by hand for the test
    with pytest.raises(ScoringError, match="share their weight with the"):
        target_modules(model, "mlp")


# ------------------------------------------------------------------------------------------------ packed batches

LONGER = RECORDS + [
    {"prompt": "Question: name three colours.", "response": " Answer: red, green and blue, and also yellow."},
    {"prompt": "a", "response": " b"},
    {"prompt": "The quick brown fox jumps over the lazy dog because", "response": " it can."},
    {"prompt": "1 2", "response": " 3 4 5 6 7 8 9 10 11 12"},
]


def no_fallback(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the packed path fell back to one backward per example")

    monkeypatch.setattr(_dean_score, "accumulate_abs_grads_autograd", refuse)


def test_packed_losses_equal_the_one_example_losses(model_and_tok):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, LONGER, False, 64)
    assert len({len(e.input_ids) for e in examples}) >= 5  # examples of different lengths share the pack
    packing = _dean_score._Packing(target_modules(model, "mlp"), {})
    offsets = torch.tensor([0] + [len(e.input_ids) for e in examples]).cumsum(0).tolist()
    packing.spans = [(o, len(e.input_ids)) for o, e in zip(offsets, examples)]
    try:
        with torch.no_grad(), _dean_score._attention_per_example(model, packing):
            packed = _dean_score._packed_losses(model, examples)
    finally:
        packing.remove()
    with torch.no_grad():
        alone = torch.stack([example_loss(model, e) for e in examples])
    assert packing.attention_calls == 2  # once per decoder layer
    assert torch.equal(packed, alone)


@pytest.mark.parametrize("target", ["all", "mlp"])
@pytest.mark.parametrize("pack_tokens", [64, 100, 512])
def test_packed_top_lists_equal_one_backward_per_example(model_and_tok, monkeypatch, target, pack_tokens):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, LONGER, False, 64)
    modules = target_modules(model, target)
    k_of = lambda n: n // 50  # noqa: E731
    one = accumulate_abs_grads_autograd(model, modules, examples)
    expected = _dean_score.reduce_to_top(modules, {n: a.clone() for n, a in one.items()}, k_of)
    no_fallback(monkeypatch)
    packed = accumulate_abs_grads(model, modules, examples, pack_tokens=pack_tokens)
    assert all(torch.equal(packed[n], one[n]) for n in modules)  # bit for bit, in the same order of addition
    fast = top_lists(model, modules, examples, k_of, pack_tokens=pack_tokens)
    assert fast.keys() == expected.keys() and all(torch.equal(fast[n], expected[n]) for n in fast)
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_packed_bfloat16_accumulation_equals_one_backward_per_example(model_and_tok, monkeypatch):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, LONGER, False, 64)
    modules = target_modules(model, "mlp")
    one = accumulate_abs_grads_autograd(model, modules, examples, dtype=torch.bfloat16)
    no_fallback(monkeypatch)
    packed = accumulate_abs_grads(model, modules, examples, dtype=torch.bfloat16, pack_tokens=64)
    assert all(packed[n].dtype == torch.bfloat16 and torch.equal(packed[n], one[n]) for n in modules)


def test_progress_sees_every_example_once(model_and_tok):
    model, tok = model_and_tok
    examples, _ = encode_all(tok, LONGER, False, 64)
    seen = []

    def progress(xs):
        for x in xs:
            seen.append(x)
            yield x

    accumulate_abs_grads(model, target_modules(model, "mlp"), examples, progress, pack_tokens=40)
    assert seen == examples


def test_a_model_without_sdpa_attention_falls_back_to_one_backward_per_example(tiny_model, model_and_tok):
    _, tok = model_and_tok
    eager = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="eager").eval()
    examples, _ = encode_all(tok, LONGER, False, 64)
    modules = target_modules(eager, "mlp")
    calls = []
    original = _dean_score.accumulate_abs_grads_autograd

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    try:
        _dean_score.accumulate_abs_grads_autograd = spy
        packed = accumulate_abs_grads(eager, modules, examples, pack_tokens=64)
    finally:
        _dean_score.accumulate_abs_grads_autograd = original
    assert calls == [1]
    one = original(eager, modules, examples)
    assert all(torch.equal(packed[n], one[n]) for n in modules)


def test_packs_keep_the_order_and_put_short_examples_alone():
    def ex(length):
        return _dean_score.Example(torch.zeros(length, dtype=torch.long), torch.zeros(length, dtype=torch.long))

    examples = [ex(n) for n in (20, 30, 5, 40, 90, 16, 16, 16)]
    packs = list(_dean_score._packs(examples, 64))
    assert [[len(e.input_ids) for e in p] for p in packs] == [[20, 30], [5], [40], [90], [16, 16, 16]]
    assert [e for p in packs for e in p] == examples


def test_packing_needs_row_stable_matrix_products(model_and_tok, monkeypatch):
    model, tok = model_and_tok
    modules = target_modules(model, "mlp")
    assert _dean_score._rows_are_stable(model, modules, 128)  # this machine: the packed tests above ran packed
    examples, _ = encode_all(tok, LONGER, False, 64)
    monkeypatch.setattr(_dean_score, "_rows_are_stable", lambda *a: False)
    calls = []
    original = _dean_score.accumulate_abs_grads_autograd
    monkeypatch.setattr(_dean_score, "accumulate_abs_grads_autograd",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    accumulate_abs_grads(model, modules, examples)
    assert calls == [1]
