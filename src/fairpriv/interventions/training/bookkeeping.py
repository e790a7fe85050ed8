"""Book-keeping per-sample clipping (Bu et al., ICML 2023) for ``Linear`` and ``Embedding`` layers: the DP kernel
behind ``grad_sample_mode=bookkeeping`` of :mod:`fairpriv.interventions.training.dp`.

Hooks keep each layer's input and output gradient; each sample's gradient norm comes from two small T x T Gram
matrices per layer (or the layer's per-sample gradient when that is cheaper), cross-terms included for a weight
used by two layers (a tied embedding and LM head); the clipped sum is one matrix product per layer (an
``index_add`` for an embedding), so no ``B x`` parameter tensor is formed. An optimizer built on Opacus'
``DPOptimizer`` clips with Opacus' formula over every parameter's combined norm and adds Opacus' noise.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import torch

from fairpriv.interventions.base import ConfigError



def _bookkeeping_type(module: Any) -> bool:
    """Exactly Linear, or an Embedding without the options that change its gradient (as Opacus: exact types)."""
    if type(module) is torch.nn.Embedding:
        return module.max_norm is None and not module.scale_grad_by_freq and not module.sparse
    return type(module) is torch.nn.Linear


def bookkeeping_modules(model: Any) -> list[Any]:
    """The Linear/Embedding modules with a parameter of their own that requires grad."""
    return [m for m in model.modules() if _bookkeeping_type(m)
            and any(p.requires_grad for p in m.parameters(recurse=False))]


def bookkeeping_problems(model: Any) -> list[str]:
    """Other modules holding a trainable parameter of a book-keeping module (it would be clipped twice)."""
    chosen = {id(m) for m in bookkeeping_modules(model)}
    owned = {id(p) for m in model.modules() if id(m) in chosen for p in m.parameters(recurse=False)}
    return [f"{name or type(m).__name__} ({type(m).__name__}) shares a trainable parameter with a Linear or "
            f"Embedding layer" for name, m in model.named_modules()
            if id(m) not in chosen and any(id(p) in owned for p in m.parameters(recurse=False) if p.requires_grad)]


def refuse_bookkeeping(model: Any) -> None:
    problems = bookkeeping_problems(model)
    if problems:
        raise ConfigError(f"grad_sample_mode=bookkeeping cannot take this model ({problems[0]}); use "
                          f"grad_sample_mode=hooks (or auto)")


@dataclasses.dataclass
class _Call:
    """One training forward of a book-keeping module: its input, then (in backward) its output's gradient, times
    the batch size for a mean loss (Opacus' convention: the gradient of each sample's own loss)."""

    module: Any
    inputs: torch.Tensor
    grad: torch.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class _Factors:
    """A per-sample gradient ``G_i = sum_t left_it right_it^T`` ([B, T, rows], [B, T, cols]); ``ids`` means
    ``left`` holds row indices ([B, T]) standing for one-hot rows (an Embedding). The dense factors are at least
    float32, whatever the activations' dtype (a bfloat16 base feeding float32 adapters), so norms and clipped sums
    are float32 sums."""

    left: torch.Tensor
    right: torch.Tensor
    ids: bool = False


class BookKeeper:
    """Hooks on the book-keeping modules; their parameters' per-sample norms and clipped sums (no per-sample
    gradient tensors). While attached, those parameters do not require grad, so autograd skips their (unused)
    ordinary gradients; Opacus then sees only the remaining trainable parameters."""

    def __init__(self, model: Any, loss_reduction: str = "mean") -> None:
        refuse_bookkeeping(model)
        self.modules = bookkeeping_modules(model)
        self.params = _unique(p for m in self.modules for p in m.parameters(recurse=False) if p.requires_grad)
        self._ids, self._mean = {id(p) for p in self.params}, loss_reduction == "mean"
        self._calls: list[_Call] = []
        self._passes = 0
        self._handles = [m.register_forward_hook(self._on_forward) for m in self.modules]
        self._handles.append(model.register_forward_pre_hook(self._on_pass))
        for p in self.params:
            p.requires_grad_(False)

    def owns(self, p: Any) -> bool:
        return id(p) in self._ids

    def remove(self) -> None:
        """Detach the hooks and make the parameters trainable again."""
        for h in self._handles:
            h.remove()
        for p in self.params:
            p.requires_grad_(True)
        self._calls, self._handles = [], []

    def _on_pass(self, module: Any, args: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._passes += 1

    def _on_forward(self, module: Any, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        """Keep the input; catch the output's gradient (an output that needs none gets a zero added that does)."""
        if not (module.training and torch.is_grad_enabled()):
            return None
        call = _Call(module, inputs[0].detach())
        self._calls.append(call)
        if not output.requires_grad:
            output = output + torch.zeros((), dtype=output.dtype, device=output.device, requires_grad=True)
        output.register_hook(functools.partial(self._on_grad, call))
        return output

    def _on_grad(self, call: _Call, grad: torch.Tensor) -> None:
        call.grad = _wide(grad.detach()) * (grad.shape[0] if self._mean else 1)  # the scaling in float32

    def collect(self) -> dict[int, list[_Factors]]:
        """The factors of every parameter's per-sample gradient from the pass since the last call, then forget it."""
        if self._passes > 1:
            raise RuntimeError("book-keeping clipping needs optimizer.step() after every forward/backward pass; "
                               "use Opacus' BatchMemoryManager for batches larger than memory")
        out: dict[int, list[_Factors]] = {id(p): [] for p in self.params}
        for call in self._calls:
            for name, p in call.module.named_parameters(recurse=False):
                if id(p) in out and call.grad is not None:
                    out[id(p)].append(_factors(call, name))
        self._calls, self._passes = [], 0
        return out

    def sq_norms(self, factors: dict[int, list[_Factors]]) -> list[torch.Tensor]:
        """Per parameter, each sample's squared gradient norm ([B]); parameters unused in the pass are left out."""
        return [_sq_norm(fs) for fs in factors.values() if fs]

    def accumulate(self, factors: dict[int, list[_Factors]], clip: torch.Tensor) -> None:
        """Add ``sum_i clip_i G_i`` to each parameter's ``summed_grad`` (zero for a parameter unused in the pass)."""
        for p in self.params:
            sums = [_clipped_sum(f, clip, p) for f in factors[id(p)]] or [torch.zeros_like(p)]
            if getattr(p, "summed_grad", None) is not None:
                sums.insert(0, p.summed_grad)
            p.summed_grad = functools.reduce(torch.Tensor.add_, sums[1:], sums[0])


def _unique(params: Iterator[Any]) -> list[Any]:
    return list({id(p): p for p in params}.values())


def _factors(call: _Call, name: str) -> _Factors:
    """A call's contribution to the parameter ``name`` of its module, flattened to [B, T, ...]."""
    grad, batch = call.grad, call.grad.shape[0]
    if isinstance(call.module, torch.nn.Embedding):
        ids = call.inputs.reshape(batch, -1)
        keep = (ids != call.module.padding_idx).unsqueeze(-1) if call.module.padding_idx is not None else 1
        return _Factors(ids, grad.reshape(batch, ids.shape[1], -1) * keep, ids=True)
    left = grad.reshape(batch, -1, grad.shape[-1])
    if name == "bias":
        return _Factors(left, left.new_ones((batch, left.shape[1], 1)))
    right = _wide(call.inputs.reshape(batch, -1, call.inputs.shape[-1]))
    dtype = torch.promote_types(left.dtype, right.dtype)
    return _Factors(left.to(dtype), right.to(dtype))


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 at least (bfloat16/float16 activations or gradients are widened; float64 is kept)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _sq_norm(factors: list[_Factors]) -> torch.Tensor:
    """``||sum_u G_u,i||^2`` for the uses ``u`` of one parameter: Gram matrices, or one layer's ``G_i`` if cheaper."""
    if len(factors) == 1 and _materialise(factors[0]):
        f = factors[0]
        return torch.bmm(f.left.transpose(1, 2), f.right).square().sum((1, 2))
    total = sum(_inner(u, u) for u in factors)
    total = total + 2 * sum(_inner(u, v) for i, u in enumerate(factors) for v in factors[i + 1:])
    return total.clamp(min=0)


def _materialise(f: _Factors) -> bool:
    """Forming ``G_i`` costs ``T rows cols``, the Gram matrices ``T^2 (rows + cols)``."""
    steps, rows, cols = f.left.shape[1], f.left.shape[-1], f.right.shape[-1]
    return not f.ids and steps * (rows + cols) > rows * cols


def _inner(u: _Factors, v: _Factors) -> torch.Tensor:
    """``<G_u,i, G_v,i>_F = sum_{t,s} (left_ut . left_vs)(right_ut . right_vs)`` for every sample i: [B]."""
    return (_left_gram(u, v) * torch.bmm(u.right, v.right.transpose(1, 2))).sum((1, 2))


def _left_gram(u: _Factors, v: _Factors) -> torch.Tensor:
    """``left_ut . left_vs`` ([B, T_u, T_v]); a one-hot row dotted with a dense one is a gather."""
    if u.ids and v.ids:
        return (u.left.unsqueeze(2) == v.left.unsqueeze(1)).to(u.right.dtype)
    if v.ids:
        return _left_gram(v, u).transpose(1, 2)
    if u.ids:
        index = u.left.unsqueeze(1).expand(-1, v.left.shape[1], -1)
        return torch.gather(v.left, 2, index).transpose(1, 2)
    return torch.bmm(u.left, v.left.transpose(1, 2))


def _clipped_sum(f: _Factors, clip: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``sum_i clip_i G_i``: one product of the left factors with the right ones, the smaller side clip-weighted
    (an ``index_add`` of the weighted rows for an Embedding)."""
    weight = clip.to(f.right).view(-1, 1, 1)
    if f.ids:
        rows = (f.right * weight).reshape(-1, f.right.shape[-1])
        return torch.zeros_like(p, dtype=rows.dtype).index_add_(0, f.left.reshape(-1), rows).to(p.dtype)
    left, right = f.left, f.right
    if left.shape[-1] < right.shape[-1]:
        left = left * weight
    else:
        right = right * weight
    return (left.reshape(-1, left.shape[-1]).T @ right.reshape(-1, right.shape[-1])).view_as(p).to(p.dtype)


def bookkeeping_optimizer(dp_optimizer: Any, keeper: BookKeeper) -> Any:
    """Opacus' DP optimizer (same optimiser, noise, clip norm, generator and accountant hook), clipping the
    keeper's parameters together with Opacus' own."""
    from opacus.optimizers import DPOptimizer

    class BookKeepingDPOptimizer(DPOptimizer):
        """Flat clipping over Opacus' per-sample gradients and the keeper's norms; noise for every parameter."""

        @property
        def params(self) -> list[Any]:
            return [p for group in self.param_groups for p in group["params"] if p.requires_grad or keeper.owns(p)]

        @property
        def grad_samples(self) -> list[torch.Tensor]:
            return [self._get_flat_grad_sample(p) for p in self.params if not keeper.owns(p)]

        @property
        def accumulated_iterations(self) -> int:
            return 1  # the keeper refuses a second pass before step(), and Poisson sampling forbids accumulation

        def clip_and_accumulate(self) -> None:
            _clip_and_accumulate(self, keeper)

        def add_noise(self) -> None:
            _add_noise_in_place(self)

        def pre_step(self, closure: Any = None) -> bool:
            return _pre_step(self)

    opt = dp_optimizer
    out = BookKeepingDPOptimizer(opt.original_optimizer, noise_multiplier=opt.noise_multiplier,
                                 max_grad_norm=opt.max_grad_norm, expected_batch_size=opt.expected_batch_size,
                                 loss_reduction=opt.loss_reduction, generator=opt.generator,
                                 secure_mode=opt.secure_mode)
    out.attach_step_hook(opt.step_hook)
    return out


def _clip_and_accumulate(opt: Any, keeper: BookKeeper) -> None:
    """Opacus' flat clipping (factor ``C / (||g_i|| + 1e-6)``, at most 1) with the keeper's norms added in."""
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    factors, own = keeper.collect(), [p for p in opt.params if not keeper.owns(p)]
    samples = [opt._get_flat_grad_sample(p) for p in own]
    sq = [_wide(g.reshape(len(g), math.prod(g.shape[1:]))).norm(2, dim=-1).square() for g in samples]
    sq += keeper.sq_norms(factors)
    norms = torch.stack(sq, dim=1).sum(dim=1).sqrt() if sq else torch.zeros(0, device=_device(opt.params))
    clip = (opt.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    for p, g in zip(own, samples):
        _check_processed_flag(p.grad_sample)
        grad = torch.einsum("i,i...", clip.to(g), g)
        p.summed_grad = grad if p.summed_grad is None else p.summed_grad + grad
        _mark_as_processed(p.grad_sample)
    keeper.accumulate(factors, clip)


def _device(params: list[Any]) -> torch.device | None:
    return params[0].device if params else None


def _add_noise_in_place(opt: Any) -> None:
    """``DPOptimizer.add_noise`` (the same noise from the same generator, parameter by parameter), added to
    ``summed_grad`` in place instead of into a new tensor: one fewer copy of every parameter per step."""
    from opacus.optimizers.optimizer import _check_processed_flag, _generate_noise, _mark_as_processed

    for p in opt.params:
        _check_processed_flag(p.summed_grad)
        noise = _generate_noise(std=opt.noise_multiplier * opt.max_grad_norm, reference=p.summed_grad,
                                generator=opt.generator, secure_mode=opt.secure_mode)
        p.grad = p.summed_grad.add_(noise).view_as(p)
        _mark_as_processed(p.summed_grad)


def _pre_step(opt: Any) -> bool:
    """``DPOptimizer.pre_step`` without its shortcut for an optimizer with no per-sample gradients (with
    book-keeping, Opacus may see none: the keeper's parameters still need clipping and noise)."""
    opt.clip_and_accumulate()
    if opt._check_skip_next_step():
        opt._is_last_step_skipped = True
        return False
    opt.add_noise()
    opt.scale_grad()
    if opt.step_hook:
        opt.step_hook(opt)
    opt._is_last_step_skipped = False
    return True


# --------------------------------------------------------------------------------------------------------------
# Private training
# --------------------------------------------------------------------------------------------------------------
