"""Every tensor the training loop makes follows the model's device, except the CPU ones it makes on purpose.

There is no GPU here, so the model is put on the ``meta`` device (shapes, no data) and a ``TorchDispatchMode``
records the device of every tensor any aten op returns while the loop runs: SFT-LoRA (and full fine-tuning) through
``_train.run`` with the real plan, collation, forward, loss, backward and AdamW steps, then ``mean_loss``; and the
DP book-keeping kernel's hooks, norms and clipped sums. A batch, position ids, mask, loss weight, optimiser
state or clip factor made on the CPU shows up as a CPU tensor in the record, and would be a device mix on a GPU.

Allowed on the CPU, on purpose:
* 0-dim tensors (scalars): torch accepts a CPU scalar next to a tensor on any device, and AdamW keeps its step
  count as one (``state["step"]``, unless ``capturable``/``fused``);
* ``randperm`` from the seeded CPU ``torch.Generator`` of the shuffled plan: index permutations, read with
  ``tolist()`` (a CPU generator draws the same order on every machine).

Harness patch: the loop reads losses as Python floats in one place, ``_train._number``; a meta tensor has no value,
so the test replaces it with one that returns nan for a meta tensor (the counting and the steps are unchanged).
Attention is ``eager``: transformers' SDPA mask reads the attention mask's values (``.item()``) to skip masking.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fairpriv.interventions.training import loop as _train
from fairpriv.interventions.training.bookkeeping import BookKeeper
from fairpriv.interventions.training.loop import IGNORE, Example
from fairpriv.interventions.training.sft import SFTConfig

META = torch.device("meta")
EXAMPLES = [Example((1, 5, 6, 7, 2), (IGNORE, IGNORE, 6, 7, 2)), Example((1, 8, 9), (IGNORE, 9, 9)),
            Example((1, 3, 4, 10, 11, 2), (IGNORE, IGNORE, IGNORE, 10, 11, 2))]


class DeviceRecorder(TorchDispatchMode):
    """Records (op, device, shape) of every tensor an op returns that is not on ``device``."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device, self.off = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.device != self.device:
                self.off.append((str(func), t.device, tuple(t.shape)))
        return out

    def unexpected(self) -> list[tuple]:
        """The off-device tensors other than CPU scalars and the plan's index permutations."""
        return [(op, dev, shape) for op, dev, shape in self.off
                if not (dev.type == "cpu" and (shape == () or op.startswith("aten.randperm")))]


def tiny_llama(dtype: torch.dtype = torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
                         tie_word_embeddings=False)
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config).to(dtype).eval()


@pytest.fixture()
def meta_numbers(monkeypatch):
    real = _train._number
    monkeypatch.setattr(_train, "_number", lambda v: math.nan if isinstance(v, torch.Tensor) and v.is_meta
                        else real(v))


def on_meta(model):
    model = model.to(META)
    assert {p.device for p in model.parameters()} | {b.device for b in model.buffers()} == {META}
    return model


@pytest.mark.parametrize(("method", "dtype"), [("lora", torch.bfloat16), ("lora", torch.float32),
                                               ("full", torch.float32)])
def test_a_training_run_makes_every_tensor_on_the_models_device(meta_numbers, method, dtype):
    cfg = SFTConfig(method=method, train_batch_size=2, grad_accum=2, epochs=2, seed=0)
    model = on_meta(_train.prepare(tiny_llama(dtype), cfg))
    optimizer = _train.make_optimizer(model, cfg)
    with _train.train_mode(model, 0.1), DeviceRecorder(META) as rec:  # dropout on: its masks must follow too
        result = _train.run(optimizer, _train.shuffled_plan(EXAMPLES, cfg, cfg.grad_accum),
                            _train.plain_backward(model, 0), steps=3)
        held_out = _train.mean_loss(model, EXAMPLES, 0, batch_size=2)
    assert rec.unexpected() == []
    assert any(op.startswith("aten.randperm") for op, _, _ in rec.off)  # the recorder did see the CPU plan
    assert result.steps == 3 and len(result.step_losses) == 3 and math.isnan(held_out)
    state = [t for s in optimizer.state.values() for k, t in s.items() if k != "step"]
    assert len(state) == 2 * len(optimizer.param_groups[0]["params"]) and {t.device for t in state} == {META}
    assert {t.dtype for t in state} == {torch.float32}


def test_collate_builds_the_batch_on_the_device_it_is_given():
    batch = _train.collate(EXAMPLES[:2], 0, META)
    assert {k: (v.device, v.dtype, tuple(v.shape)) for k, v in batch.items()} == {
        k: (META, torch.long, (2, 5)) for k in ("input_ids", "attention_mask", "position_ids", "labels")}
    assert _train.collate(EXAMPLES[:2], 0)["input_ids"].device == torch.device("cpu")  # default: the CPU


def test_the_recorder_catches_a_batch_made_on_the_cpu(meta_numbers):
    """The control: the pre-fix loop collated on the CPU and moved the batch; the recorder flags exactly that."""
    model = on_meta(tiny_llama())
    with DeviceRecorder(META) as rec:
        _train.forward_losses(model, _train.collate(EXAMPLES, 0))
    assert {shape for _, dev, shape in rec.unexpected() if dev.type == "cpu"} >= {(3, 6)}


def test_model_device_is_where_the_input_embeddings_live():
    model = tiny_llama()
    model.lm_head.to(META)  # a model split over devices: the batch goes where the embeddings are
    assert _train.model_device(model) == torch.device("cpu")
    assert _train.model_device(torch.nn.Linear(2, 2).to(META)) == META  # no embeddings: the first parameter


def test_book_keeping_norms_and_clipped_sums_stay_on_the_models_device():
    cfg = SFTConfig(method="lora", seed=0)
    model = on_meta(_train.prepare(tiny_llama(torch.bfloat16), cfg)).train()
    keeper = BookKeeper(model)
    try:
        with DeviceRecorder(META) as rec:
            batch = _train.collate(EXAMPLES, 0, META)
            _train.forward_losses(model, batch).mean().backward()
            factors = keeper.collect()
            norms = torch.stack(keeper.sq_norms(factors), dim=1).sum(dim=1).sqrt()
            keeper.accumulate(factors, (1.0 / (norms + 1e-6)).clamp(max=1.0))
        assert rec.unexpected() == []
        assert norms.shape == (3,) and norms.dtype == torch.float32
        assert {(p.summed_grad.device, p.summed_grad.dtype) for p in keeper.params} == {(META, torch.float32)}
    finally:
        keeper.remove()
