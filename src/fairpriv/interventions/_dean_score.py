"""DEAN's importance score (arXiv 2410.16672): SNIP, |W| * sum over examples of |dL(x)/dW|, per weight entry.

* L(x) is the token-mean cross-entropy over the response tokens of one (prompt, response) example; prompt tokens
  are labelled -100. Prompt and response token ids are concatenated (no chat template unless asked).
* One example per backward pass, because the absolute value is taken per example. A single backward gives the
  gradients of every scored matrix at once: the released code instead repeats all examples for each decoder layer
  (n x num_layers backward passes); :func:`layerwise_top_lists` keeps that procedure as the benchmark's reference.
* |grad| is added into a float32 accumulator from a post-accumulate-grad hook, and the gradient is freed at once, so
  gradients of all matrices never coexist with the accumulator: extra memory stays near one copy of the scored
  weights. After the last example each matrix is reduced to its top-k list (all the selection needs) and its
  accumulator is dropped.

The model is scored in eval mode (dropout off) and its ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch

from fairpriv.interventions._dean_select import topk_stable

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
    return torch.nn.functional.cross_entropy(logits, example.labels[1:].to(device), ignore_index=-100)


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
            tied[module.weight.data_ptr()] = getter.removeprefix("get_")
    clash = {n: tied[m.weight.data_ptr()] for n, m in found.items() if m.weight.data_ptr() in tied}
    if clash:
        raise ScoringError(f"target layers {sorted(clash)} share their weight with the {sorted(set(clash.values()))}; "
                           "zeroing them would edit a tied tensor: choose a narrower target")


def layer_of(name: str) -> int:
    return int(BLOCK.search(name).group(1))


# ------------------------------------------------------------------------------------------------ scoring


@contextlib.contextmanager
def _only_grad_for(model: Any, modules: dict[str, torch.nn.Module]) -> Iterator[None]:
    flags = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    try:
        for p in flags:
            p.requires_grad_(False)
        for m in modules.values():
            m.weight.requires_grad_(True)
        model.eval()
        yield
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
        model.train(was_training)


def _add_abs_grad(acc: torch.Tensor) -> Callable[[torch.Tensor], None]:
    def hook(param: torch.Tensor) -> None:
        grad = param.grad
        acc.add_(grad.abs_() if grad.dtype == acc.dtype else grad.abs().to(acc.dtype))
        param.grad = None

    return hook


def accumulate_abs_grads(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
                         progress: Callable | None = None,
                         dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """sum over examples of |dL(x)/dW| for every module's weight, one backward pass per example, added up in
    ``dtype`` (float32; bfloat16 reproduces the release's accumulation)."""
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
              dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Score every module from one backward pass per example and keep each matrix's top list."""
    return reduce_to_top(modules, accumulate_abs_grads(model, modules, examples, progress, dtype), k_of)


def layerwise_scores(model: Any, modules: dict[str, torch.nn.Module], examples: list[Example],
                     progress: Callable | None = None) -> dict[str, torch.Tensor]:
    """The released procedure (the benchmark's reference): all examples again for each decoder layer, every full
    score tensor kept. Same float32 arithmetic as :func:`top_lists`, so the selected masks must be identical."""
    layers = sorted({layer_of(n) for n in modules})
    scores: dict[str, torch.Tensor] = {}
    for layer in progress(layers) if progress else layers:
        chosen = {n: m for n, m in modules.items() if layer_of(n) == layer}
        acc = accumulate_abs_grads(model, chosen, examples)
        scores.update({n: a.mul_(chosen[n].weight.detach().abs().float()) for n, a in acc.items()})
    return scores
