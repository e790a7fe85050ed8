"""SFT/CDA with LoRA/DoRA on a bfloat16 or float16 frozen base: float32 adapters, loss and optimiser state, the base
untouched, and the same training as in float32 up to half-precision rounding; full fine-tuning of a half-precision
model is refused before any weight changes. Also the DP book-keeping kernel on such a model.

The float32 reference is the *same* half-precision weights upcast, with the half run's initial adapters copied in
(peft draws them in the base's dtype, then upcasts), so the runs differ only in the precision of the base's compute.
"""

from __future__ import annotations

import copy

import pytest
import torch

from fairpriv.interventions.training import loop as _train
from fairpriv.interventions.training.bookkeeping import BookKeeper, _Call, _factors, _sq_norm
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.cda import CDA, CDAConfig
from fairpriv.interventions.training.sft import SFT, SFTConfig

LR, STEPS = 1e-2, 10
RECORDS = [{"prompt": f"Question {i}: what comes after {i}?", "response": f"The number after {i} is {i + 1}."}
           for i in range(8)]
HALF = [torch.bfloat16, torch.float16]


def config(method: str = "lora", **kw) -> SFTConfig:
    return SFTConfig(method=method, lr=LR, train_batch_size=4, epochs=100, max_steps=STEPS, seed=0, lora_r=4, **kw)


def load(folder, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype), AutoTokenizer.from_pretrained(folder)


def adapters(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def train(model, tokenizer, cfg, start_from=None):
    """SFT.train up to (not including) the merge: (session, loop result, initial adapters, optimizer)."""
    session = _train.start(model, tokenizer, RECORDS, cfg)
    if start_from is not None:
        with torch.no_grad():
            for name, p in session.model.named_parameters():
                if p.requires_grad:
                    p.copy_(start_from[name])
    initial, optimizer = adapters(session.model), _train.make_optimizer(session.model, cfg)
    with _train.train_mode(session.model, None):
        result = _train.run(optimizer, _train.shuffled_plan(session.train, cfg), _train.plain_backward(
            session.model, session.pad), STEPS)
    return session, result, initial, optimizer


@pytest.mark.parametrize(("method", "dtype"), [("lora", torch.bfloat16), ("lora", torch.float16),
                                               ("dora", torch.bfloat16)])
def test_half_base_trains_float32_adapters_and_leaves_the_base_bit_for_bit(tiny_model, method, dtype):
    model, tok = load(tiny_model, dtype)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    session, result, initial, optimizer = train(model, tok, config(method))
    params = dict(session.model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable and {params[n].dtype for n in trainable} == {torch.float32}
    assert any("magnitude" in n for n in trainable) == (method == "dora")
    assert {k: t.dtype for s in optimizer.state.values() for k, t in s.items() if k != "step"} == {
        "exp_avg": torch.float32, "exp_avg_sq": torch.float32}
    frozen = {n.replace("base_model.model.", "").replace(".base_layer", ""): p for n, p in params.items()
              if n not in trainable}
    assert frozen.keys() == base.keys()
    assert all(p.dtype == dtype and torch.equal(p, base[n]) for n, p in frozen.items())
    moved = max(float((params[n].detach() - initial[n]).abs().max()) for n in trainable)
    assert moved > LR / 2  # the adapters did move
    assert result.steps == STEPS and result.last_loss < result.first_loss - 0.1
    batch = _train.collate(session.train[:2], session.pad)
    logits = session.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert logits.dtype == dtype and _train.forward_losses(session.model, batch).dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF)
def test_half_base_lora_follows_the_float32_run(tiny_model, dtype):
    """Measured on CPU (torch 2.13, peft 0.21), 10 AdamW steps at lr 1e-2: relative L2 difference of the adapter
    updates 0.028 (bf16) / 0.035 (fp16), max abs difference of an adapter weight 0.028 / 0.036 (the largest
    movement of one is 0.095), step losses within 3.5e-4 / 5.6e-4 of 5.4.

    Tolerances: every step loss within 2^-8 of its value (bfloat16's relative precision: the logits are rounded to
    it, the loss of rounded logits is computed in float32); the updates within 10% in L2. The elementwise maximum is
    loose (half of the 10 * lr that an adapter weight moves at most): Adam moves a weight whose gradient is near zero
    by up to lr per step in the direction of that gradient's sign, which rounding noise can flip."""
    half, tok = load(tiny_model, dtype)
    reference = copy.deepcopy(half).float()
    h_session, h_result, h_start, _ = train(half, tok, config())
    f_session, f_result, f_start, _ = train(reference, tok, config(), start_from=h_start)
    h_end, f_end = adapters(h_session.model), adapters(f_session.model)
    for h, f in zip(h_result.step_losses, f_result.step_losses):
        assert abs(h - f) <= f * 2**-8
    moved_h = torch.cat([(h_end[n] - h_start[n]).flatten() for n in h_end]).double()
    moved_f = torch.cat([(f_end[n] - f_start[n]).flatten() for n in f_end]).double()
    assert float((moved_h - moved_f).norm() / moved_f.norm()) < 0.1
    assert float((moved_h - moved_f).abs().max()) < STEPS * LR / 2


def test_full_fine_tuning_of_a_bfloat16_model_is_refused_before_any_weight_changes(tiny_model):
    model, tok = load(tiny_model, torch.bfloat16)
    before = {n: (p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()}
    with pytest.raises(ConfigError) as err:
        SFT(config("full")).train(model, tok, RECORDS)
    assert str(err.value) == (
        "method=full trains every weight in place and needs float32 weights, but the model's weights are bfloat16; "
        "pass dtype=float32 (full fine-tuning in float32), or method=lora (or method=dora) to train float32 adapters "
        "on the frozen bfloat16 base")
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    assert all(torch.equal(after[n], p) and after[n].requires_grad == grad for n, (p, grad) in before.items())


def test_a_trainable_half_precision_parameter_is_refused_by_name():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).to(torch.float16))
    model[0].requires_grad_(False)
    with pytest.raises(ConfigError, match=r"2 trainable parameters are float16 \(first: 1.weight\); load the model "
                                          r"with dtype=float32, or .* method=lora"):
        _train.check_trainable(model)
    model[1].requires_grad_(False)
    _train.check_trainable(model)  # nothing trainable in half precision: accepted


def test_sft_and_cda_end_to_end_on_a_bfloat16_base(tiny_model):
    """The whole intervention: a merged bfloat16 model that differs from the base, and the dtypes in the facts."""
    records = [{"text": f"He told his sister that she would be {i} soon."} for i in range(8)]
    for intervention in (SFT(config()), CDA(CDAConfig(lr=LR, train_batch_size=4, max_steps=3, seed=0))):
        model, tok = load(tiny_model, torch.bfloat16)
        base = {n: p.detach().clone() for n, p in model.named_parameters()}
        merged, facts = intervention.train(model, tok, records)
        assert facts["dtypes"] == {"trainable": "float32", "frozen": "bfloat16"}
        assert {p.dtype for p in merged.parameters()} == {torch.bfloat16}
        changed = [n for n, p in merged.named_parameters() if not torch.equal(p, base[n])]
        assert changed and all("layers" in n for n in changed)  # the adapted block layers only
    assert facts["cda"]["augmented"] == 8 and facts["cda"]["records_out"] == 16  # CDA did run (two-sided)


# --------------------------------------------------------------------------------------------------------------
# DP book-keeping on a bfloat16 base with float32 adapters
# --------------------------------------------------------------------------------------------------------------


def test_book_keeping_factors_are_float32_for_half_precision_activations():
    """A float32 Linear fed bfloat16 activations with a bfloat16 output gradient: the factors are float32 and the
    per-sample squared norm equals the float64 one of the same (rounded) values, where a bfloat16 product would be
    off by about 2^-8."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 5)
    inputs, grad = torch.randn(3, 4, 6).to(torch.bfloat16), torch.randn(3, 4, 5).to(torch.bfloat16)
    f = _factors(_Call(layer, inputs, grad), "weight")
    assert f.left.dtype == f.right.dtype == torch.float32
    per_sample = torch.einsum("btr,btc->brc", grad.double(), inputs.double())
    assert torch.allclose(_sq_norm([f]).double(), per_sample.square().sum((1, 2)), rtol=1e-6)


def test_book_keeping_on_a_bfloat16_base_matches_per_sample_autograd(tiny_model):
    """Per-sample norms and the clipped sum of the keeper vs autograd of each sample's own loss through the same
    (deterministic) batched forward: the bfloat16 base's activations are identical, so only the float32 sums of
    the adapters' gradients differ."""
    model, tok = load(tiny_model, torch.bfloat16)
    session = _train.start(model, tok, RECORDS[:3], config(lora_targets="q_proj+v_proj"))
    lora = session.model.train()
    with torch.no_grad():  # lora_B starts at zero: give it values so every adapter has a gradient
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    batch, clip = _train.collate(session.train[:3], session.pad), torch.tensor([0.5, 1.0, 0.25])
    params = [p for p in lora.parameters() if p.requires_grad]
    losses = _train.forward_losses(lora, batch)
    reference = [torch.autograd.grad(loss, params, retain_graph=True) for loss in losses]
    keeper = BookKeeper(lora, loss_reduction="sum")  # a mean would scale the bfloat16 backward by 1/3: rounding
    try:
        _train.forward_losses(lora, batch).sum().backward()
        factors = keeper.collect()
        norms = torch.stack(keeper.sq_norms(factors), dim=1).sum(dim=1)
        keeper.accumulate(factors, clip)
        sums = [p.summed_grad for p in params]
    finally:
        keeper.remove()
    assert keeper.params == params and norms.dtype == torch.float32
    expected = torch.stack([sum(g.double().square().sum() for g in r) for r in reference])
    assert torch.allclose(norms.double(), expected, rtol=1e-5)
    for k, total in enumerate(sums):
        assert total.dtype == torch.float32
        assert torch.allclose(total, sum(c * r[k] for c, r in zip(clip.tolist(), reference)), rtol=1e-5, atol=1e-7)
