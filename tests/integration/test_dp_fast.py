"""``grad_sample_mode=bookkeeping``: exact per-sequence clipping without per-sample gradient tensors.

One DP step's gradient (noise 0, clip norm below some sequences' gradient norms, so clipping is active) on the
tiny llama, with tied and untied embeddings, padded sequences and the padding token inside a sequence, is compared
with two references: Opacus' ``hooks`` path and an independent loop that back-propagates each sequence alone,
clips it and averages. With noise, both paths draw the same noise from the same seeded generator for every
parameter, so their noisy gradients agree too. The book-keeper's refusals and clean-up are checked on toy modules.
"""

from __future__ import annotations

import copy

import pytest
import torch

from fairpriv.interventions.training import loop as _train
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.dp import (
    DP,
    BookKeeper,
    DPConfig,
    PrivacyPlan,
    dp_backward,
    make_private,
    release,
    resolve_mode,
)

RECORDS = [{"prompt": f"Question {i}: what is {i} plus {i * 7}?", "response": f" It is {i * 8}." * (1 + i % 3)}
           for i in range(6)]


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def examples(tok):
    """Sequences of different lengths (padded in a batch) plus one with the padding token inside it."""
    out, _ = _train.encode_records(RECORDS, tok, 96)
    pad = tok.pad_token_id
    inner = out[0].ids[:6] + (pad,) + out[0].ids[6:]
    return out + [_train.Example(inner, (_train.IGNORE,) * 7 + inner[7:])]


def random_model(tiny_model, tied: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = tied
    torch.manual_seed(3)
    return AutoModelForCausalLM.from_config(config).train()


def dp_gradients(model, mode: str, examples, pad: int, clip: float, noise: float = 0.0, method: str = "full"):
    """The gradient one DP step hands to AdamW (noised, divided by the batch size), without taking the step."""
    cfg = DPConfig(method=method, noise_multiplier=noise, max_grad_norm=clip, train_batch_size=len(examples),
                   grad_sample_mode=mode)
    model = _train.prepare(model, cfg).train()
    plan = PrivacyPlan(n=len(examples), sample_rate=1.0, steps=1, delta=1e-5, delta_rule="given",
                       noise_multiplier=noise)
    private = make_private(model, cfg, plan, mode)
    try:
        dp_backward(model, pad, private, mode)(examples, 1.0)
        assert private.optimizer.pre_step()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    finally:
        release(private)


def per_sequence_reference(model, examples, pad: int, clip: float) -> tuple[dict, list[float]]:
    """Each sequence back-propagated alone, clipped to ``clip`` (Opacus' factor), averaged; and the norms."""
    grads, norms = [], []
    for e in examples:
        model.zero_grad()
        _train.forward_losses(model, _train.collate([e], pad)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        norms.append(float(torch.sqrt(sum(g.square().sum() for g in grads[-1].values()))))
    out = {}
    for g, norm in zip(grads, norms):
        for n, v in g.items():
            out[n] = out.get(n, 0) + min(1.0, clip / (norm + 1e-6)) * v / len(examples)
    return out, norms


def assert_same(a: dict, b: dict, rtol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for name in a:
        scale = float(b[name].abs().max())
        assert float((a[name] - b[name]).abs().max()) <= rtol * scale + 1e-12, name


# ---- exactness ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tied", [True, False])
def test_bookkeeping_gives_the_clipped_sum_of_per_sequence_gradients(tiny_model, tok, examples, tied):
    base = random_model(tiny_model, tied)
    assert (base.lm_head.weight is base.model.embed_tokens.weight) == tied
    _, norms = per_sequence_reference(copy.deepcopy(base), examples, tok.pad_token_id, 1.0)
    clip = sorted(norms)[len(norms) // 2]  # about half the sequences are clipped
    reference, _ = per_sequence_reference(copy.deepcopy(base), examples, tok.pad_token_id, clip)
    bookkeeping = dp_gradients(copy.deepcopy(base), "bookkeeping", examples, tok.pad_token_id, clip)
    assert_same(bookkeeping, reference)


@pytest.mark.parametrize("tied", [True, False])
def test_bookkeeping_equals_opacus_hooks(tiny_model, tok, examples, tied):
    base, pad = random_model(tiny_model, tied), tok.pad_token_id
    plain = [e for e in examples if pad not in e.ids]  # Opacus' Embedding sampler ignores padding_idx
    hooks = dp_gradients(copy.deepcopy(base), "hooks", plain, pad, clip=0.05)
    bookkeeping = dp_gradients(copy.deepcopy(base), "bookkeeping", plain, pad, clip=0.05)
    assert_same(bookkeeping, hooks)


def test_bookkeeping_adds_the_same_noise_to_every_parameter(tiny_model, tok, examples):
    base, pad = random_model(tiny_model, True), tok.pad_token_id
    plain = [e for e in examples if pad not in e.ids]
    hooks = dp_gradients(copy.deepcopy(base), "hooks", plain, pad, clip=0.05, noise=1.0)
    bookkeeping = dp_gradients(copy.deepcopy(base), "bookkeeping", plain, pad, clip=0.05, noise=1.0)
    quiet = dp_gradients(copy.deepcopy(base), "bookkeeping", plain, pad, clip=0.05)
    assert_same(bookkeeping, hooks)
    assert all(float((bookkeeping[n] - quiet[n]).std()) > 0.5 * 0.05 / len(plain) for n in quiet)  # noised


def test_bookkeeping_lora_equals_opacus_hooks(tiny_model, tok, examples):
    from transformers import AutoModelForCausalLM

    pad = tok.pad_token_id
    plain = [e for e in examples if pad not in e.ids]
    load = lambda: AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)  # noqa: E731
    hooks = dp_gradients(load(), "hooks", plain, pad, clip=1e-3, method="lora")
    bookkeeping = dp_gradients(load(), "bookkeeping", plain, pad, clip=1e-3, method="lora")
    assert len(bookkeeping) == 4 * 7 and all(".lora_" in n for n in bookkeeping)  # 2 layers x 7 linears x A, B
    assert_same(bookkeeping, hooks)


# ---- the intervention ----------------------------------------------------------------------------------------


def test_auto_picks_bookkeeping_for_full_fine_tuning_and_hooks_for_lora(tiny_model):
    model = random_model(tiny_model, True)
    assert resolve_mode(model, DPConfig(method="full")) == "bookkeeping"
    assert resolve_mode(model, DPConfig(method="lora")) == "hooks"


def test_full_dp_fit_uses_bookkeeping_counts_its_steps_and_cleans_up(tiny_model, tok):
    from opacus.accountants import RDPAccountant

    model = random_model(tiny_model, True)
    trained, facts = DP(DPConfig(method="full", epsilon=5.0, train_batch_size=3, epochs=2)).train(model, tok, RECORDS)
    assert facts["grad_sample_mode"] == "bookkeeping" and facts["steps"] == facts["accountant_steps"] == 4
    acc = RDPAccountant()
    for _ in range(4):
        acc.step(noise_multiplier=facts["noise_multiplier"], sample_rate=facts["sample_rate"])
    assert facts["epsilon"] == pytest.approx(acc.get_epsilon(facts["delta"]), rel=1e-12)
    assert all(p.requires_grad for p in trained.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in trained.modules())
    assert not any(hasattr(p, a) for p in trained.parameters() for a in ("grad_sample", "summed_grad"))


def test_empty_poisson_batches_still_step_under_bookkeeping(tiny_model, tok, monkeypatch):
    from fairpriv.interventions.training import dp as dp_module

    empties, real = [], dp_module._empty_gradients
    monkeypatch.setattr(dp_module, "_empty_gradients", lambda *a: (empties.append(1), real(*a)))
    cfg = DPConfig(method="full", noise_multiplier=1.0, train_batch_size=1)  # q = 1/6: some batches empty
    _, facts = DP(cfg).train(random_model(tiny_model, True), tok, RECORDS)
    assert empties and facts["steps"] == facts["accountant_steps"] == facts["planned_steps"] == 6


# ---- the book-keeper on toy modules -------------------------------------------------------------------------------


class Toy(torch.nn.Module):
    """Embedding -> Linear (with bias) -> head tied to the embedding: every kind of use the keeper handles."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.mix = torch.nn.Embedding(11, 4, padding_idx=0), torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 11, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids):
        return self.head(torch.tanh(self.mix(self.embed(ids))))


def test_a_second_pass_before_the_step_is_refused():
    model, ids = Toy().train(), torch.tensor([[1, 2, 3], [4, 5, 0]])
    keeper = BookKeeper(model)
    for _ in range(2):
        model(ids).square().mean().backward()
    with pytest.raises(RuntimeError, match=r"optimizer.step\(\) after every forward/backward pass"):
        keeper.collect()
    keeper.remove()
    assert all(p.requires_grad for p in model.parameters())


def test_toy_norms_are_the_per_sample_gradient_norms():
    model, ids = Toy().train(), torch.tensor([[1, 2, 3, 2], [4, 5, 0, 0], [7, 7, 7, 9]])
    expected = []
    for row in ids:
        model.zero_grad()
        model(row[None]).square().sum().backward()
        expected.append(sum(p.grad.square().sum() for p in model.parameters()))
    keeper = BookKeeper(model)
    model(ids).square().sum(dim=(1, 2)).mean().backward()
    norms = torch.stack(keeper.sq_norms(keeper.collect()), dim=1).sum(dim=1)
    keeper.remove()
    assert torch.allclose(norms, torch.stack(expected), rtol=1e-5)


def test_a_parameter_shared_with_another_kind_of_module_is_refused():
    class Scale(torch.nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.weight = weight

    model = Toy()
    model.scale = Scale(model.mix.weight)
    cfg = DPConfig(method="full", grad_sample_mode="bookkeeping")
    with pytest.raises(ConfigError, match=r"bookkeeping cannot take this model \(scale \(Scale\) shares .* "
                                          r"use grad_sample_mode=hooks"):
        resolve_mode(model, cfg)
    assert resolve_mode(model, DPConfig(method="full")) == "hooks"
