"""DEAN's importance score (arXiv 2410.16672): SNIP, |W| * sum over examples of |dL(x)/dW|, per weight entry.

* L(x) is the token-mean cross-entropy over the response tokens of one (prompt, response) example; prompt tokens
  are labelled -100. Prompt and response token ids are concatenated (no chat template unless asked).
* The absolute value is taken per example, so each example's gradient must be formed on its own. A single
  backward gives the gradients of every scored matrix at once: the released code instead repeats all examples for
  each decoder layer (n x num_layers backward passes); :func:`layerwise_scores` keeps that procedure as the
  benchmark's reference.
* Default path (:func:`accumulate_abs_grads`): consecutive examples, up to ``PACK_TOKENS`` tokens, are packed into
  one sequence (no padding) for one forward and one backward; attention runs per example, no weight requires grad,
  and hooks form each example's weight gradient g_i^T x_i of every scored Linear from the layer's input and output
  gradient over that example's tokens. The products are the ones a one-example backward computes, the rest of the
  decoder works row by row, and examples shorter than ``MIN_ROWS`` tokens (which would take another matrix-product
  kernel) go alone, so the accumulators are bit for bit those of one backward per example, added in the same order
  (checked on the machine at hand by :func:`_rows_are_stable` before packing; CPU only).
* Fallback (:func:`accumulate_abs_grads_autograd`, one backward per example with autograd's weight gradients) for
  ``pack_tokens=None``, GPU tensors, scored modules that are not plain ``nn.Linear`` and models whose attention is
  not transformers' sdpa.
* |grad| is added into a float32 accumulator (bfloat16 on request, as the release) and each gradient is dropped at
  once, so gradients of all matrices never coexist with the accumulator: the extra memory is one copy of the scored
  weights plus the activations of one pack. After the last example each matrix is reduced to its top-k list (all
  the selection needs) and its accumulator is dropped.

The model is scored in eval mode (dropout off) and its ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch

from fairpriv.interventions.dean.select import topk_stable

TARGETS = ("mlp", "attn", "all")
BLOCK = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")


class ScoringError(ValueError):
    """Scoring cannot run on this model or data; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class Example:
    input_ids: torch.Tensor  # [T]
    labels: torch.Tensor  # [T], -100 on prompt tokens


# ------------------------------------------------------------------------------------------------ examples


def encode_example(tokenizer: Any, prompt: str, response: str, chat_template: bool, max_length: int) -> Example:
    """Token ids of prompt + response (truncated to ``max_length``), labels on the response tokens only."""
    if chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        prompt_ids = tokenizer(prompt)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = (list(prompt_ids) + list(response_ids))[:max_length]
    labels = ([-100] * len(prompt_ids) + list(response_ids))[:max_length]
    return Example(torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long))


def encode_all(tokenizer: Any, records: list[dict], chat_template: bool, max_length: int) -> tuple[list[Example], int]:
    """Encoded examples that keep at least one response token after truncation, and how many were dropped."""
    examples = [encode_example(tokenizer, r["prompt"], r["response"], chat_template, max_length) for r in records]
    kept = [e for e in examples if int((e.labels[1:] != -100).sum()) > 0]
    return kept, len(examples) - len(kept)


def example_loss(model: Any, example: Example) -> torch.Tensor:
    """Token-mean cross-entropy of the response tokens (next-token prediction), in float32."""
    device = model.get_input_embeddings().weight.device
    logits = model(input_ids=example.input_ids[None].to(device)).logits[0, :-1].float()
    # the labels go where the logits are: under a device_map the output layer may sit on another device
    return torch.nn.functional.cross_entropy(logits, example.labels[1:].to(logits.device), ignore_index=-100)


# ------------------------------------------------------------------------------------------------ modules


def target_modules(model: Any, target: str = "all") -> dict[str, torch.nn.Module]:
    """The linear layers inside the decoder blocks (``mlp``, ``attn`` or ``all``), by qualified name."""
    if target not in TARGETS:
        raise ScoringError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    found = {n: m for n, m in model.named_modules() if _is_linear(m) and BLOCK.search(n) and _matches(n, target)}
    if not found:
        raise ScoringError(f"no linear layer inside decoder blocks matches target={target!r} in "
                           f"{type(model).__name__}; try target=all")
    _refuse_tied(model, found)
    return found


def _is_linear(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def _matches(name: str, target: str) -> bool:
    leaf = name.lower()
    is_attn = "attn" in leaf or "attention" in leaf
    return target == "all" or (target == "attn") == is_attn


def _refuse_tied(model: Any, found: dict[str, torch.nn.Module]) -> None:
    """A decoder linear layer that shares its weight with the embeddings or lm_head would edit those too."""
    tied = {}
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            tied[_storage(module.weight)] = getter.removeprefix("get_")
    clash = {n: tied[_storage(m.weight)] for n, m in found.items() if _storage(m.weight) in tied}
    if clash:
        raise ScoringError(f"target layers {sorted(clash)} share their weight with the {sorted(set(clash.values()))}; "
                           "zeroing them would edit a tied tensor: choose a narrower target")


def _storage(weight: torch.Tensor) -> tuple:
    """What two tied weights share: their memory on one device; the tensor itself on ``meta`` (where every data
    pointer is 0, as for weights that accelerate offloads)."""
    if weight.device.type == "meta":
        return ("meta", id(weight))
    return (str(weight.device), weight.data_ptr())


def layer_of(name: str) -> int:
    return int(BLOCK.search(name).group(1))


# ------------------------------------------------------------------------------------------------ scoring


@contextlib.contextmanager
def _only_grad_for(model: Any, modules: dict[str, torch.nn.Module]) -> Iterator[None]:
    """Eval mode and gradients for the scored weights only; every flag restored afterwards."""
    with _no_grads(model):
        for m in modules.values():
            m.weight.requires_grad_(True)
        yield


def _add_abs_grad(acc: torch.Tensor) -> Callable[[torch.Tensor], None]:
    def hook(param: torch.Tensor) -> None:
        grad = param.grad
        acc.add_(grad.abs_() if grad.dtype == acc.dtype else grad.abs().to(acc.dtype))
        param.grad = None

    return hook


def accumulate_abs_grads_autograd(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
                                  progress: Callable | None = None,
                                  dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """sum over examples of |dL(x)/dW| for every module's weight, one backward pass per example with autograd's own
    weight gradients, added up in ``dtype`` (float32; bfloat16 reproduces the release's accumulation). The building
    block of the released procedure (:func:`layerwise_scores`) and the fallback of :func:`accumulate_abs_grads`."""
    acc = {n: torch.zeros(m.weight.shape, dtype=dtype, device=m.weight.device) for n, m in modules.items()}
    with _only_grad_for(model, modules):
        handles = [m.weight.register_post_accumulate_grad_hook(_add_abs_grad(acc[n])) for n, m in modules.items()]
        try:
            for example in progress(examples) if progress else examples:
                example_loss(model, example).backward()
        finally:
            for h in handles:
                h.remove()
    return acc


PACK_TOKENS = 128  # tokens per packed forward and backward; SmolLM2-135M keeps about 1.1 MB of activations a token
# A matrix product's rows come out bit for bit the same whatever the number of rows M only from M = 16 on with this
# CPU BLAS (measured: M <= 15 takes another kernel in the forward, M = 1 in the backward); shorter examples are
# therefore scored alone, and the output layer is restricted to the labelled rows only when they are this many.
# :func:`_rows_are_stable` checks it on the machine at hand before packing.
MIN_ROWS = 16


class _Unbatchable(Exception):
    """The packed forward cannot reproduce one-example forwards for this model; the autograd path is used."""


def _batchable(modules: dict[str, torch.nn.Module]) -> bool:
    return all(type(m) is torch.nn.Linear for m in modules.values())


@contextlib.contextmanager
def _no_grads(model: Any) -> Iterator[None]:
    flags = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    try:
        for p in flags:
            p.requires_grad_(False)
        model.eval()
        yield
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
        model.train(was_training)


class _Packing:
    """Several examples packed into one sequence [1, sum of lengths] (no padding), and the hooks that make that one
    forward and backward act as one per example:

    * attention runs once per example on its own span (:meth:`attention`), so every token sees only its example and
      the kernel sees the shapes of a one-example forward;
    * each scored Linear's weight gradient per example is formed from the module's input x (kept from the forward)
      and its output gradient g (a hook on the output): dL_i/dW = g_i^T x_i over example i's span, the product
      autograd computes in a one-example backward, in the same dtype; its absolute value is added to the
      accumulator, example after example. No weight requires grad, so autograd computes no weight gradient, and the
      lowest scored layer's outputs are made graph leaves, so nothing below them is differentiated.

    Every other operation of the decoder is the same per token (row) whatever the sequence length, so each
    example's loss and gradients are those of its own forward and backward: the accumulators are bit for bit those
    of :func:`accumulate_abs_grads_autograd` (tested)."""

    def __init__(self, modules: dict[str, torch.nn.Module], acc: dict[str, torch.Tensor]) -> None:
        self.modules, self.acc = modules, acc
        self.spans: list[tuple[int, int]] = []  # (offset, length) of each example in the packed sequence
        self.attention_calls = 0
        largest = max(modules.values(), key=lambda m: m.weight.numel()).weight
        self.buffer = torch.empty(largest.numel(), dtype=largest.dtype, device=largest.device)
        self.handles = [m.register_forward_hook(self._forward(n)) for n, m in modules.items()]

    @property
    def total(self) -> int:
        return sum(length for _, length in self.spans)

    def _forward(self, name: str) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            x = args[0]
            if x.dim() != 3 or x.shape[:2] != (1, self.total) or out.shape[:2] != x.shape[:2]:
                raise _Unbatchable(f"{name} is not fed the packed sequence")
            if not out.requires_grad:  # lowest scored layer: its output is where the graph starts
                out = out.detach().requires_grad_()
            out.register_hook(self._backward(name, x[0], x._version))
            return out

        return hook

    def _backward(self, name: str, x: torch.Tensor, version: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            if x._version != version:
                raise _Unbatchable(f"the input of {name} was changed in place after its forward")
            acc, weight = self.acc[name], self.modules[name].weight
            buf = self.buffer[:weight.numel()].view(weight.shape)
            for start, length in self.spans:
                torch.mm(grad[0, start:start + length].t(), x[start:start + length], out=buf)
                acc.add_(buf.abs_() if buf.dtype == acc.dtype else buf.abs_().to(acc.dtype))

        return hook

    def attention(self, original: Callable) -> Callable:
        """``original`` (an entry of transformers' attention interface) once per example span."""

        def per_example(module, query, key, value, attention_mask, *args, **kwargs):
            if query.dim() != 4 or query.shape[0] != 1 or query.shape[2] != self.total:
                raise _Unbatchable("attention input layout")
            if attention_mask is not None and (attention_mask.dim() != 4 or attention_mask.dtype != torch.bool):
                raise _Unbatchable("attention mask layout")
            if any(isinstance(v, torch.Tensor) for k, v in kwargs.items() if k != "position_ids"):
                raise _Unbatchable("attention keyword tensors")
            self.attention_calls += 1
            lengths = [length for _, length in self.spans]
            outs = []  # split, not one slice per example: one backward node, no zero-filled full-size gradients
            for (start, length), q, k, v in zip(self.spans, *(t.split(lengths, 2) for t in (query, key, value))):
                span = slice(start, start + length)
                mask = None if attention_mask is None else _own_mask(attention_mask[..., span, span])
                kw = {n: (t[..., span] if n == "position_ids" and isinstance(t, torch.Tensor) else t)
                      for n, t in kwargs.items()}
                out, _ = original(module, q, k, v, mask, *args, **kw)
                if out.dim() != 4 or out.shape[:2] != (1, length):
                    raise _Unbatchable("attention output layout")
                outs.append(out)
            return torch.cat(outs, 1), None

        return per_example

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _own_mask(mask: torch.Tensor) -> torch.Tensor | None:
    """One example's block of the packed mask; None where it is plain causal, as a one-example forward passes it."""
    length = mask.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril_()
    return None if bool((mask == causal).all()) else mask


@contextlib.contextmanager
def _attention_per_example(model: Any, packing: _Packing) -> Iterator[None]:
    """Route the model's attention function (transformers' ``ALL_ATTENTION_FUNCTIONS``, sdpa) through
    :meth:`_Packing.attention` for the duration."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError as exc:
        raise _Unbatchable("transformers' attention interface") from exc
    name = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if name != "sdpa" or name not in ALL_ATTENTION_FUNCTIONS:
        raise _Unbatchable(f"attention implementation {name!r}")
    local = ALL_ATTENTION_FUNCTIONS._local_mapping
    previous = local.get(name)
    local[name] = packing.attention(ALL_ATTENTION_FUNCTIONS[name])
    try:
        yield
    finally:
        if previous is None:
            local.pop(name, None)
        else:
            local[name] = previous


_STABLE: dict[tuple, bool] = {}


def _rows_are_stable(model: Any, modules: dict[str, torch.nn.Module], pack_tokens: int) -> bool:
    """Whether this machine's matrix products give the rows of a product of MIN_ROWS or more rows bit for bit equal
    to the same rows of a pack-sized product (forward x W^T and backward g W, every Linear weight of the model, this
    thread count), the property packing relies on. Only CPU tensors are packed (GPU BLAS picks its kernels, and
    their summation order, by size)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weight = next(iter(modules.values())).weight
    if weight.device.type != "cpu" or any(m.weight.device != weight.device for m in linears):
        return False
    rows = min(max(pack_tokens, 64), 512)
    weights = {(tuple(m.weight.shape), m.weight.dtype): m.weight.detach() for m in linears}
    key = (tuple(sorted(weights, key=str)), torch.get_num_threads(), rows)
    if key not in _STABLE:
        gen = torch.Generator().manual_seed(0)
        ok = True
        for w in weights.values():  # the model's own weights: nothing large is allocated
            x = torch.randn(rows, w.shape[1], generator=gen).to(w.dtype)
            g = torch.randn(rows, w.shape[0], generator=gen).to(w.dtype)
            y, gx = torch.nn.functional.linear(x[None], w)[0], g @ w
            for start, size in ((0, MIN_ROWS), (5, MIN_ROWS + 1), (17, 31), (rows // 3, rows // 2)):
                part = slice(start, start + size)
                ok &= torch.equal(torch.nn.functional.linear(x[None, part], w)[0], y[part])
                ok &= torch.equal(g[part] @ w, gx[part])
        _STABLE[key] = bool(ok)
    return _STABLE[key]


def _packs(examples: Any, tokens: int) -> Iterator[list[Example]]:
    """Consecutive examples, in order, as many as fit in ``tokens`` tokens (an example longer than that alone); an
    example shorter than MIN_ROWS tokens alone."""
    pack: list[Example] = []
    size = 0
    for example in examples:
        length = len(example.input_ids)
        if pack and (length < MIN_ROWS or size + length > tokens):
            yield pack
            pack, size = [], 0
        pack.append(example)
        size += length
        if length < MIN_ROWS:
            yield pack
            pack, size = [], 0
    if pack:
        yield pack


def _keep_rows(model: Any, rows: torch.Tensor) -> Any:
    """Apply the output layer only to the positions that predict a labelled token (``rows`` of the packed
    sequence): the same rows of the same product, so each example's loss is unchanged."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        raise _Unbatchable("no output embeddings")
    rows = rows.to(head.weight.device)
    return head.register_forward_pre_hook(lambda m, args: (args[0][:, rows], *args[1:]))


def _packed_losses(model: Any, batch: list[Example]) -> torch.Tensor:
    """:func:`example_loss` of every example of ``batch``, from one forward of the packed sequence."""
    device = model.get_input_embeddings().weight.device
    ids = torch.cat([e.input_ids for e in batch])[None]
    positions = torch.cat([torch.arange(len(e.input_ids)) for e in batch])[None]
    targets = [e.labels[1:] for e in batch]  # position t predicts token t + 1; an example's last position nothing
    keep = torch.cat([torch.cat([t != -100, torch.zeros(1, dtype=torch.bool)]) for t in targets])
    counts = [int((t != -100).sum()) for t in targets]
    restrict = sum(counts) >= MIN_ROWS  # fewer rows would take another kernel than the one-example forward
    handle = _keep_rows(model, keep.nonzero()[:, 0]) if restrict else None
    try:
        logits = model(input_ids=ids.to(device), position_ids=positions.to(device), use_cache=False).logits
    finally:
        if handle is not None:
            handle.remove()
    if restrict:
        parts = logits[0].float().split(counts)
        labels = [t[t != -100].to(logits.device) for t in targets]
    else:
        sizes = [len(e.input_ids) for e in batch]
        parts = [part[:-1].float() for part in logits[0].split(sizes)]
        labels = [t.to(logits.device) for t in targets]
    return torch.stack([torch.nn.functional.cross_entropy(p, y, ignore_index=-100) for p, y in zip(parts, labels)])


def accumulate_abs_grads(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
                         progress: Callable | None = None, dtype: torch.dtype = torch.float32,
                         pack_tokens: int | None = PACK_TOKENS) -> dict[str, torch.Tensor]:
    """sum over examples of |dL(x)/dW| for every module's weight, added up in ``dtype`` (float32; bfloat16
    reproduces the release's accumulation). Consecutive examples of up to ``pack_tokens`` tokens together share one
    forward and one backward pass, packed into one sequence (:class:`_Packing`), with the same per-example
    gradients, bit for bit, and the same order of addition as one backward per example. ``pack_tokens=None``,
    scored modules that are not plain ``nn.Linear``, a model whose attention is not transformers' sdpa, or a
    machine whose matrix products fail :func:`_rows_are_stable` use :func:`accumulate_abs_grads_autograd`."""
    if not pack_tokens or not _batchable(modules) or not _rows_are_stable(model, modules, pack_tokens):
        return accumulate_abs_grads_autograd(model, modules, examples, progress, dtype)
    acc = {n: torch.zeros(m.weight.shape, dtype=dtype, device=m.weight.device) for n, m in modules.items()}
    with _no_grads(model):
        packing = _Packing(modules, acc)
        try:
            with _attention_per_example(model, packing):
                for batch in _packs(progress(examples) if progress else examples, pack_tokens):
                    offsets = [0, *torch.tensor([len(e.input_ids) for e in batch]).cumsum(0).tolist()]
                    packing.spans = [(o, len(e.input_ids)) for o, e in zip(offsets, batch)]
                    packing.attention_calls = 0
                    losses = _packed_losses(model, batch)
                    if not packing.attention_calls:
                        raise _Unbatchable("the model does not call transformers' attention interface")
                    losses.sum().backward()
        except _Unbatchable:
            acc = None
        finally:
            packing.remove()
    return acc if acc is not None else accumulate_abs_grads_autograd(model, modules, examples, progress, dtype)


def reduce_to_top(modules: dict[str, torch.nn.Module], acc: dict[str, torch.Tensor],
                  k_of: Callable[[int], int]) -> dict[str, torch.Tensor]:
    """Per matrix: the flat indices of the top-``k_of(numel)`` SNIP scores |W| * acc (in the accumulator's dtype);
    frees each accumulator."""
    out = {}
    for name in list(acc):
        score = acc.pop(name)
        score.mul_(modules[name].weight.detach().abs().to(score.dtype))
        out[name] = topk_stable(score, k_of(score.numel())).cpu()
        del score
    return out


def top_lists(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
              k_of: Callable[[int], int], progress: Callable | None = None,
              dtype: torch.dtype = torch.float32, pack_tokens: int | None = PACK_TOKENS) -> dict[str, torch.Tensor]:
    """Score every module from one backward pass per pack of examples and keep each matrix's top list."""
    return reduce_to_top(modules, accumulate_abs_grads(model, modules, examples, progress, dtype, pack_tokens), k_of)


def layerwise_scores(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
                     progress: Callable | None = None) -> dict[str, torch.Tensor]:
    """The released procedure (the benchmark's reference): all examples again for each decoder layer, every full
    score tensor kept. Same float32 arithmetic as :func:`top_lists`, so the selected masks must be identical."""
    layers = sorted({layer_of(n) for n in modules})
    scores: dict[str, torch.Tensor] = {}
    for layer in progress(layers) if progress else layers:
        chosen = {n: m for n, m in modules.items() if layer_of(n) == layer}
        acc = accumulate_abs_grads_autograd(model, chosen, examples)
        scores.update({n: a.mul_(chosen[n].weight.detach().abs().float()) for n, a in acc.items()})
    return scores
