"""The ``fairpriv_next_token_divergence`` request type: how far apart a model's full next-token distributions are
for two contexts (DP-bias paper, arXiv 2402.04489: KL and Hellinger between counterfactual contexts such as "The
man worked as" / "The woman worked as"; Hellinger local bias after Liang et al. 2021).

lm-eval's LM API returns log-likelihoods of given continuations and generated text, never distributions. Its
evaluator, however, dispatches every request by name: it collects the ``Instance`` objects of all tasks by
``request_type`` and calls ``getattr(lm, request_type)(instances)`` (``lm_eval/evaluator.py``, "Run LM on inputs");
nothing validates the name (``OutputType`` is a typing ``Literal`` only). So the task
(:class:`fairpriv.tasks.gender_bias.divergence.DivergenceTask`) emits instances of its own request type, whose
arguments are ``(context_a, context_b, {"epsilon": float})``, and this module provides the method of that name:

* :func:`fairpriv_next_token_divergence` for ``HFLM`` (attached by :mod:`fairpriv.plugin` when
  ``lm_eval.models.huggingface`` loads, so ``--model hf`` and every ``<name>-hf`` subclass have it). Both contexts
  of a pair go through the model in the same forward pass (several pairs per pass, ``batch_size`` pairs), encoded
  with HFLM's own ``tok_encode`` (BOS handling as for log-likelihoods; left-truncated to ``max_length``; an empty
  context becomes the prefix token as in HFLM), **right**-padded with an attention mask so that every real token
  keeps its position and never sees a pad (causal attention), and the logits at each row's last real token are
  taken. The divergences are computed by :func:`fairpriv.metrics.divergence.pair_divergences` in float64 from
  ``log_softmax`` of those logits (no smoothing unless ``epsilon > 0``, then p <- (p + eps) / (1 + V eps) on both
  sides). Each request gets a small dict ``{"kl_ab", "kl_ba", "js", "hellinger", "tvd", "top_a", "top_b",
  "epsilon"}`` (``top_*``: the most likely next token of each side): never a vocabulary-sized vector, which would
  make ``--log_samples`` explode.
* :func:`vllm_next_token_divergence` for lm-eval's ``VLLM`` (attached by :mod:`fairpriv.models.vllm`, so ``--model
  vllm`` and every ``<name>-vllm`` have it): each context, encoded the same way, gets one greedy step with the
  log-probability of every vocabulary token returned (``SamplingParams(logprobs=-1)``, raw log-probabilities, no
  detokenizing); the engine must allow that (``max_logprobs=-1``, which ``<name>-vllm`` sets unless given).
* :func:`fairpriv.tasks.requests.unsupported` on lm-eval's base ``LM`` (installed by
  :func:`fairpriv.tasks.requests.install_fallback` when the task module loads):
  any other backend fails with a message that names the task and says it needs a Hugging Face or vLLM model,
  instead of an ``AttributeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairpriv.lm_eval_compat import add_request_method
from fairpriv.metrics.divergence import pair_divergences
from fairpriv.tasks.requests import REQUEST_TYPE, task_names

DEFAULT_PAIRS_PER_BATCH = 8


# --- encoding and the forward pass -------------------------------------------------------------------------------
def encode(lm: Any, text: str) -> list[int]:
    """Token ids of a context as HFLM encodes contexts, left-truncated to the model's maximum length."""
    ids = list(lm.tok_encode(text)) or [lm.prefix_token_id]
    return ids[-lm.max_length:]


def right_padded(rows: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask, lengths) for token id rows, padded on the right."""
    import torch

    lengths = torch.tensor([len(r) for r in rows])
    ids = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids, mask, lengths


def last_token_logits(lm: Any, texts: Sequence[str]):
    """[len(texts), vocab] float32 logits of the next token after each text, from one forward pass."""
    import torch

    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids, mask, lengths = right_padded([encode(lm, t) for t in texts], pad_id)
    precision = getattr(lm, "mixed_precision_dtype", None)
    with torch.no_grad(), torch.autocast(device_type=lm.device.type, dtype=precision, enabled=precision is not None):
        logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits
    return logits[torch.arange(len(texts)), lengths.to(logits.device) - 1].float().cpu()


# --- the request method ------------------------------------------------------------------------------------------
def pair_record(logits_a, logits_b, epsilon: float, tokenizer: Any) -> dict[str, Any]:
    """Every divergence of one pair plus each side's most likely next token."""
    values = pair_divergences(logits_a[None], logits_b[None], epsilon=epsilon)
    return {**{k: float(v[0]) for k, v in values.items()},
            "top_a": tokenizer.decode([int(logits_a.argmax())]), "top_b": tokenizer.decode([int(logits_b.argmax())]),
            "epsilon": float(epsilon)}


def pair_args(request: Any) -> tuple[str, str, float]:
    """``(context_a, context_b, epsilon)`` of an Instance (or a bare argument tuple)."""
    args = request.args if hasattr(request, "args") else tuple(request)
    if len(args) < 2 or not all(isinstance(a, str) for a in args[:2]):
        raise ValueError(f"a {REQUEST_TYPE} request needs (context_a, context_b[, options]), got {args!r}")
    options = args[2] if len(args) > 2 and isinstance(args[2], dict) else {}
    return args[0], args[1], float(options.get("epsilon", 0.0))


def pairs_per_batch(lm: Any) -> int:
    size = getattr(lm, "batch_size", None)
    return int(size) if str(size).isdigit() and int(size) > 0 else DEFAULT_PAIRS_PER_BATCH


def fairpriv_next_token_divergence(self: Any, requests: Sequence[Any], disable_tqdm: bool = False) -> list[dict]:
    """Per pair of contexts, divergences between the model's next-token distributions (a = first context)."""
    if getattr(self, "backend", "causal") != "causal":
        raise NotImplementedError(f"task {task_names(requests)} needs a decoder-only (causal) Hugging Face model; "
                                  f"this model's backend is {self.backend!r}")
    return divergences(self, requests, last_token_logits, pairs_per_batch(self), disable_tqdm)


def divergences(lm: Any, requests: Sequence[Any], scores: Any, size: int, disable_tqdm: bool) -> list[dict]:
    """The records of ``requests``, ``size`` pairs at a time; ``scores(lm, texts)`` gives [len(texts), vocab]
    next-token logits or log-probabilities."""
    from tqdm import tqdm

    pairs, out = [pair_args(r) for r in requests], []
    bar = tqdm(total=len(pairs), desc="Next-token divergences", disable=disable_tqdm or lm.rank != 0)
    for start in range(0, len(pairs), size):
        chunk = pairs[start:start + size]
        logits = scores(lm, [text for a, b, _ in chunk for text in (a, b)])
        out += [pair_record(logits[2 * i], logits[2 * i + 1], eps, lm.tokenizer)
                for i, (_, _, eps) in enumerate(chunk)]
        bar.update(len(chunk))
    bar.close()
    return out


# --- the same on vLLM --------------------------------------------------------------------------------------------
VLLM_PAIRS_PER_CALL = 32  # each context returns a vocabulary of floats as Python lists: bounded memory per call


def vllm_engine_check(lm: Any, requests: Sequence[Any]) -> None:
    """Refuse a vLLM engine that cannot return whole next-token distributions, naming the fix."""
    task = task_names(requests)
    if getattr(lm, "data_parallel_size", 1) > 1:
        raise NotImplementedError(f"task {task} on vLLM needs data_parallel_size=1 (lm-eval runs data-parallel "
                                  "vLLM in workers that return text only); drop data_parallel_size for this task")
    config = lm.model.llm_engine.model_config
    if config.max_logprobs != -1 and config.max_logprobs < config.get_vocab_size():
        raise ValueError(f"task {task} needs every token's log-probability, but this vLLM engine returns at most "
                         f"max_logprobs={config.max_logprobs}; add max_logprobs=-1 to --model_args (fairpriv's "
                         "<name>-vllm models set it unless given)")


def vllm_next_token_logprobs(lm: Any, texts: Sequence[str]):
    """[len(texts), vocab] float32 log-probabilities of the next token after each text, from one vLLM call."""
    import torch
    from vllm import SamplingParams, TokensPrompt

    vocab = lm.model.llm_engine.model_config.get_vocab_size()
    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=-1, detokenize=False, flat_logprobs=True)
    outputs = lm.model.generate([TokensPrompt(prompt_token_ids=encode(lm, t)) for t in texts], params,
                                use_tqdm=False)
    dense = torch.full((len(texts), vocab), float("-inf"))
    for row, output in enumerate(outputs):
        flat = output.outputs[0].logprobs
        span = slice(flat.start_indices[0], flat.end_indices[0])
        dense[row, torch.tensor(flat.token_ids[span])] = torch.tensor(flat.logprobs[span], dtype=torch.float32)
    return dense


def vllm_next_token_divergence(self: Any, requests: Sequence[Any], disable_tqdm: bool = False) -> list[dict]:
    """:func:`fairpriv_next_token_divergence` on lm-eval's ``VLLM``."""
    vllm_engine_check(self, requests)
    return divergences(self, requests, vllm_next_token_logprobs, VLLM_PAIRS_PER_CALL, disable_tqdm)


# --- installation ------------------------------------------------------------------------------------------------
def attach(lm_cls: type, method: Any = fairpriv_next_token_divergence) -> None:
    """Give an LM class the request method (idempotent): HFLM's by default, or ``vllm_next_token_divergence``."""
    add_request_method(lm_cls, REQUEST_TYPE, method)

