"""DP fine-tuning keeps every tensor on the model's device, without a GPU.

A whole ``DP.train`` (LoRA, hooks and book-keeping modes; full fine-tuning in book-keeping mode) runs on a tiny
random llama on PyTorch's ``meta`` device, under a dispatch mode that sees every aten op:

* an op whose tensor arguments (other than 0-dim scalars, which CUDA accepts from the CPU too) lie on two
  devices is recorded (the meta kernels raise for most of them anyway);
* every random op that takes a generator is recorded with the device the generator was made for and the device
  of its output: the Gaussian noise must be drawn on the model's device by a generator made for that device (a
  CPU generator fails there on CUDA: Opacus draws the noise with it on the gradients' device), and the only CPU
  draws are the Poisson index sampler's.

Two things are patched around, in this harness only: a meta tensor holds no values, so reading a loss as a
Python number (``aten._local_scalar_dense``, a host sync) returns 0.0; and a ``torch.Generator`` cannot be made
for ``meta`` (it is no accelerator), so ``dp.seeded_generator`` records the device asked for and returns a CPU
generator (meta kernels ignore it).

A LoRA DP step on a bfloat16 frozen base (float32 adapters) is checked with values on the CPU: its clipped
gradient equals the float32 base's to bfloat16 rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from fairpriv.interventions.training import dp, loop as _train
from fairpriv.interventions.training.dp import DP, DPConfig, PrivacyPlan, dp_backward, make_private, release

RECORDS = [{"prompt": f"Question {i}: what is {i} plus {i * 7}?", "response": f" It is {i * 8}." * (1 + i % 3)}
           for i in range(8)]
CROSS_DEVICE = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default}  # moves, not mixes


class DeviceLog(TorchDispatchMode):
    """Every aten op's devices: mixed arguments, random draws (generator's device, output device), host syncs."""

    def __init__(self, generators: dict[int, torch.device]) -> None:
        super().__init__()
        self.generators, self.mixed, self.draws, self.syncs = generators, [], [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            self.syncs += 1
            return 0.0  # a host sync: meta tensors hold no values
        devices = {t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t.dim() > 0}
        if len(devices) > 1 and func not in CROSS_DEVICE:
            self.mixed.append(f"{func}: {sorted(map(str, devices))}")
        out = func(*args, **kwargs)
        if kwargs.get("generator") is not None:
            made_for = self.generators.get(kwargs["generator"].initial_seed(), "unknown")
            self.draws.append((func.overloadpacket.__name__, str(made_for), str(out.device)))
        return out


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture()
def generators(monkeypatch) -> dict[int, torch.device]:
    """``dp.seeded_generator`` recording the device each generator is made for, by seed (the dispatcher hands
    ops another Python object for the same generator); a CPU generator stands in for a meta one."""
    made, real = {}, dp.seeded_generator

    def seeded(device, seed):
        gen = real("cpu" if torch.device(device).type == "meta" else device, seed)
        made[seed] = torch.device(device)
        return gen

    monkeypatch.setattr(dp, "seeded_generator", seeded)
    return made


def meta_model(tiny_model):
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_model))


@pytest.mark.parametrize("method,mode", [("lora", "hooks"), ("lora", "bookkeeping"), ("full", "bookkeeping")])
def test_dp_training_keeps_every_tensor_on_the_model_device(tiny_model, tok, generators, method, mode):
    cfg = DPConfig(method=method, grad_sample_mode=mode, noise_multiplier=1.0, train_batch_size=4, epochs=1,
                   dp_delta=1e-3, seed=5)
    with DeviceLog(generators) as log:
        trained, facts = DP(cfg).train(meta_model(tiny_model), tok, RECORDS)
    assert log.mixed == []
    assert {d for d in log.draws if d[0] == "normal"} == {("normal", "meta", "meta")}  # the noise: on the model
    # Poisson indices (and the loader's base seed) are drawn on the CPU by the CPU index generator
    assert {d for d in log.draws if d[0] != "normal"} == {("rand", "cpu", "cpu"), ("random_", "cpu", "cpu")}
    assert sum(1 for d in log.draws if d[0] == "normal") == facts["steps"] * _tensors(trained, method)
    assert facts["steps"] == facts["planned_steps"] == facts["noise_draws"] == 2
    assert {p.device.type for p in trained.parameters()} == {"meta"}
    assert log.syncs > 0  # the losses were read (and patched)


def _tensors(model, method: str) -> int:
    """The number of noised parameter tensors: LoRA's A and B per adapted layer, or every distinct parameter."""
    if method == "lora":
        return 2 * 7 * model.config.num_hidden_layers
    return len(list(model.parameters()))


# ---- a bfloat16 frozen base under float32 adapters ----------------------------------------------------------------


def lora_gradient(model, tok, mode: str) -> dict[str, torch.Tensor]:
    """The clipped (noise 0) gradient of one DP step on all of RECORDS, LoRA adapters only."""
    cfg = DPConfig(method="lora", grad_sample_mode=mode, noise_multiplier=0.0, max_grad_norm=1e-3,
                   train_batch_size=len(RECORDS), seed=1)
    model = _train.prepare(model, cfg).train()
    examples, _ = _train.encode_records(RECORDS, tok, 64)
    plan = PrivacyPlan(n=len(examples), sample_rate=1.0, steps=1, delta=1e-5, delta_rule="given",
                       noise_multiplier=0.0)
    private = make_private(model, cfg, plan, mode)
    try:
        dp_backward(model, tok.pad_token_id, private, mode)(examples, 1.0)
        assert private.optimizer.pre_step()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    finally:
        release(private)


@pytest.mark.parametrize("mode", ["hooks", "bookkeeping"])
def test_lora_dp_step_on_a_bfloat16_base(tiny_model, tok, mode):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    low = copy.deepcopy(base).to(torch.bfloat16)
    reference, grads = lora_gradient(base, tok, mode), lora_gradient(low, tok, mode)
    assert grads.keys() == reference.keys() and len(grads) == 2 * 7 * 2
    assert {g.dtype for g in grads.values()} == {torch.float32}
    lora_b = [n for n in grads if "lora_B" in n]  # B = 0 at the start, so A's gradient is 0: B's carries the step
    for n in lora_b:
        scale = float(reference[n].abs().max())
        assert scale > 0 and float((grads[n] - reference[n]).abs().max()) <= 0.03 * scale, n
    assert all(float(grads[n].abs().max()) == 0 for n in grads if "lora_A" in n)


def test_dp_fit_on_a_bfloat16_base_keeps_it_bfloat16(tiny_model, tok):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = DPConfig(method="lora", noise_multiplier=1.0, max_grad_norm=0.05, train_batch_size=4, dp_delta=1e-3,
                   lr=0.05)
    trained, facts = DP(cfg).train(model, tok, RECORDS)
    assert facts["steps"] == facts["noise_draws"] == 2 and facts["epsilon"] > 0
    assert {p.dtype for p in trained.parameters()} == {torch.bfloat16}
    moved = [n for n, p in trained.named_parameters() if not torch.equal(p, before[n])]
    assert moved and all(".layers." in n for n in moved)  # the adapters were merged into the block linears
