"""Every tensor that DEAN scoring, selection and masking and the analyses create follows the model's device.

The model is put on the ``meta`` device and every aten operation is watched by :class:`DeviceAudit`: an operation
whose tensors sit on two devices is recorded (CUDA refuses those; meta lets ``add_`` and ``out=`` through, so the
audit checks them itself), moves (``.to``, ``copy_``) excepted, and CPU scalars allowed as CUDA allows them. A
tensor created on the CPU where the model's device was meant meets the model's tensors somewhere and is caught.
Meta tensors hold no values, so the audit answers the few reads back to the host (``.item()``, ``.cpu()``) with
zeros, and ``nonzero`` (boolean indexing) takes every entry (torch's ``meta_nonzero_assume_all_nonzero``): the
numbers are meaningless here, only the devices are checked (the values are checked on the CPU by the other
tests)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers import AutoModelForCausalLM, AutoTokenizer

from fairpriv.interventions.dean import score
from fairpriv.interventions.dean.select import select_mask, topk_stable

aten = torch.ops.aten
MOVES = {aten.to, aten._to_copy, aten.copy_, aten._copy_from, aten._copy_from_and_resize}
RECORDS = [{"prompt": "The capital of France is", "response": " Paris. The capital of Italy is Rome, and the number "
            "after one is two, and the number after two is three."},
           {"prompt": "What do bees make?", "response": " Honey, and 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15."},
           {"prompt": "Question:", "response": " two"}]  # shorter than MIN_ROWS tokens: scored alone


class DeviceAudit(TorchDispatchMode):
    """Records every aten operation whose tensors (inputs and outputs) live on more than one device."""

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[tuple[str, list[str]]] = []
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        self.ops += 1
        self.check(func, inputs)  # before running it: meta refuses some mixes itself
        read = host_read(func, inputs, args, kwargs)
        out = func(*args, **kwargs) if read is NotImplemented else read
        self.check(func, inputs + [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)])
        return out

    def check(self, func, tensors: list[torch.Tensor]) -> None:
        devices = {str(t.device) for t in tensors if t.dim() > 0 or t.device.type != "cpu"}
        if func.overloadpacket not in MOVES and len(devices) > 1:
            self.mixed.append((str(func), sorted(devices)))


def host_read(func, inputs, args, kwargs):
    """Zeros where code reads a meta tensor back to the host; NotImplemented otherwise."""
    if not any(t.is_meta for t in inputs):
        return NotImplemented
    if func is aten._local_scalar_dense.default:
        return False if args[0].dtype == torch.bool else 0.0 if args[0].dtype.is_floating_point else 0
    target = kwargs.get("device", next((a for a in args[1:] if isinstance(a, torch.device)), None))
    if func.overloadpacket in (aten.to, aten._to_copy) and target is not None and torch.device(target).type == "cpu":
        dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), args[0].dtype)
        return torch.zeros(args[0].shape, dtype=dtype)
    return NotImplemented


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def meta_model(folder, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval().to("meta")


def audited(fn, *args, **kwargs):
    from torch.fx.experimental import _config

    audit = DeviceAudit()
    with audit, _config.patch(meta_nonzero_assume_all_nonzero=True):  # a shape for nonzero and boolean indexing
        result = fn(*args, **kwargs)
    assert audit.ops and audit.mixed == [], audit.mixed[:5]
    return result


def test_the_audit_catches_what_cuda_refuses_and_meta_lets_through():
    model_side = torch.zeros(4, 4, device="meta")
    for planted in (lambda: model_side.add_(torch.ones(4, 4)),  # a CPU tensor added into a model tensor
                    lambda: torch.mm(model_side, model_side, out=torch.empty(4, 4)),  # an out= on the CPU
                    lambda: model_side + torch.ones(4)):  # meta refuses this one itself
        audit = DeviceAudit()
        with audit, contextlib.suppress(RuntimeError):
            planted()
        assert audit.mixed, planted
    audit = DeviceAudit()
    with audit:
        (model_side + torch.tensor(2.0)).to("cpu")  # a CPU scalar and a move are fine, as on CUDA
        torch.ones(3).to("meta").mul_(2)
    assert audit.mixed == []


@pytest.mark.parametrize(("model_dtype", "acc_dtype"), [(torch.float32, torch.float32),
                                                        (torch.bfloat16, torch.float32),
                                                        (torch.float32, torch.bfloat16)])
def test_dean_scoring_one_backward_per_example_follows_the_model(tiny_model, tokenizer, model_dtype, acc_dtype):
    model = meta_model(tiny_model, model_dtype)
    modules = score.target_modules(model, "all")  # tied weights are told apart on meta too (all data pointers 0)
    examples, _ = score.encode_all(tokenizer, RECORDS, False, 512)
    acc = audited(score.accumulate_abs_grads_autograd, model, modules, examples, dtype=acc_dtype)
    assert {n: (a.device.type, a.dtype, a.shape) for n, a in acc.items()} == {
        n: ("meta", acc_dtype, m.weight.shape) for n, m in modules.items()}
    assert all(p.requires_grad for p in model.parameters())  # the flags from_pretrained set, restored


def test_dean_scoring_packed_follows_the_model(tiny_model, tokenizer, monkeypatch):
    """The packed path (CPU only in use, where its bit-for-bit check holds), forced on a meta model."""
    model = meta_model(tiny_model)
    modules = score.target_modules(model, "all")
    examples, _ = score.encode_all(tokenizer, RECORDS, False, 512)
    assert sorted(len(e.input_ids) for e in examples)[0] < score.MIN_ROWS < len(examples[0].input_ids)
    monkeypatch.setattr(score, "_rows_are_stable", lambda *a: True)

    def no_fallback(*args, **kwargs):
        raise AssertionError("the packed path fell back to one backward per example")

    monkeypatch.setattr(score, "accumulate_abs_grads_autograd", no_fallback)
    acc = audited(score.accumulate_abs_grads, model, modules, examples, pack_tokens=64)
    assert {a.device.type for a in acc.values()} == {"meta"} and len(acc) == len(modules)


@pytest.mark.parametrize("pack_tokens", [None, 64])
def test_dean_top_lists_come_back_on_the_cpu(tiny_model, tokenizer, monkeypatch, pack_tokens):
    model = meta_model(tiny_model)
    modules = score.target_modules(model, "mlp")
    examples, _ = score.encode_all(tokenizer, RECORDS, False, 512)
    monkeypatch.setattr(score, "_rows_are_stable", lambda *a: True)
    lists = audited(score.top_lists, model, modules, examples, lambda n: n // 100, pack_tokens=pack_tokens)
    assert sorted(lists) == sorted(modules)
    assert {(t.device.type, t.dtype) for t in lists.values()} == {("cpu", torch.long)}


def test_dean_selection_and_masking_follow_their_tensors(tiny_model):
    from fairpriv.artifacts import Artifact
    from fairpriv.interventions.dean import Dean, DeanConfig

    scores = [torch.rand(8, 6).to("meta") for _ in range(3)]
    mask = audited(lambda: [select_mask(*scores, 0.2, 0.3, mode) for mode in ("set", "official")])
    assert {(m.device.type, m.dtype, m.shape) for m in mask} == {("meta", torch.bool, (8, 6))}
    top = audited(lambda: [topk_stable(scores[0], k) for k in (0, 5, 48)])
    assert {(t.device.type, t.dtype) for t in top} == {("meta", torch.long)} and top[2].shape == (48,)

    model = meta_model(tiny_model)
    name = "model.layers.1.mlp.up_proj"
    shape = list(model.get_submodule(name).weight.shape)

    class Given(Artifact):
        def load_tensors(self, _):
            return {name: torch.tensor([0, 3, 5])}  # as safetensors loads it: on the CPU

    artifact = Given(tiny_model, {"facts": {"shapes": {name: shape}}, "files": {}})
    audited(Dean(DeanConfig()).apply, model, artifact)


def test_coupling_representations_follow_the_model(tiny_model, tokenizer):
    from fairpriv.analyze.coupling import layer_states
    from fairpriv.interventions.dean import DeanConfig

    model = meta_model(tiny_model)
    states = audited(layer_states, model, tokenizer, ["The capital of France is", "What do bees make?"],
                     DeanConfig(), "probes")
    assert [s.shape for s in states] == [(2, 32), (2, 32)]


def test_grad_norms_follow_the_model(tiny_model, tokenizer):
    from fairpriv.analyze.grad_norms import Validation, checkpoint_norms

    model = meta_model(tiny_model)
    validation = Validation({"male": ["He is an actor."], "female": ["She is an actress."]}, {}, {})
    measured = audited(checkpoint_norms, model, tokenizer, validation, {"params": "all", "max_length": 64}, "meta")
    assert measured["n_params"] == sum(p.numel() for p in model.parameters())
