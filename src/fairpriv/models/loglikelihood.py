"""Faster log-likelihood for lm-eval's HF model: shared contexts computed once, logits only where they are read.

:class:`PackedScoring` goes before ``HFLM`` in a class's bases (``<name>-hf`` and the plain model of ``fairpriv
run``). It replaces two HFLM methods with ones that return the same numbers (to float rounding; the greedy flags
too):

* ``_loglikelihood_tokens`` (multiple-choice and every other log-likelihood task): the options of a question share
  one row whose context is computed once (:mod:`fairpriv.models.packing`), rows are sorted by length so batches pad
  little, and the model computes output logits only at the positions whose predictions are read
  (transformers' ``logits_to_keep``) instead of at every position of every row;
* ``loglikelihood_rolling`` (perplexity): every document's windows are scored together, sorted by length, instead of
  in document order (HFLM pads each batch of 16 windows to its longest: 31% of the token slots of
  ``bold_wiki_perplexity`` were padding).

It falls back to HFLM's own code (``share_contexts=false`` asks for that) for seq2seq models, ``batch_size=auto``,
attention implementations other than ``sdpa`` and ``eager`` (a packed row needs its own attention mask), rolling
windows over several processes, and a model that fails the check made once per model: a short packed example scored
both ways must agree (:meth:`PackedScoring._fp_packing_works`).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from lm_eval import utils
from tqdm import tqdm

from fairpriv.models.packing import Row, batches, logit_positions, mask_spec, plan_rows
from fairpriv.models.variant import as_flag

log = logging.getLogger(__name__)

SCORING_KEYS = frozenset({"share_contexts"})
MASKABLE = ("sdpa", "eager")  # attention implementations that take a 4-D mask as given
CHECK_TEXT = "Packing check: the quick brown fox jumps over the lazy dog, then runs far away into the woods."


class PackedScoring:
    """Mixed in before ``HFLM``; ``share_contexts`` (default true) switches the faster scoring on or off."""

    def __init__(self, *args: Any, share_contexts: Any = True, **kwargs: Any) -> None:
        self._fp_share = as_flag(share_contexts, "share_contexts", f"model '{type(self).__name__}'")
        self._fp_packing_checked: bool | None = None
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------------------------------- lm-eval methods

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if not self._fp_use_packing():
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        rows = plan_rows([(ctx, cont) for _, ctx, cont in requests], self.max_length)
        results: list[Any] = [None] * len(requests)
        bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running loglikelihood requests")
        for batch in batches(rows, int(self.batch_size)):
            for index, answer in self._fp_score(batch, requests):
                results[index] = answer
                if requests[index][0] is not None:  # rolling windows have no key: cached per document instead
                    self.cache_hook.add_partial("loglikelihood", requests[index][0], answer)
                bar.update(1)
        bar.close()
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        if not self._fp_use_packing() or self.world_size > 1:
            return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        windows, owners = [], []
        for index, request in enumerate(requests):
            for window in self._fp_windows(request.args[0]):
                windows.append((None, *window))
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (value, _) in zip(owners, self._loglikelihood_tokens(windows, disable_tqdm=disable_tqdm)):
            totals[owner] += value
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", (request.args[0],), total)
        return totals

    def _fp_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
        """HFLM's disjoint rolling windows of ``text`` (one token of context each)."""
        windows = utils.get_rolling_token_windows(token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                                                  max_seq_len=self.max_length, context_len=1)
        return [utils.make_disjoint_window(w) for w in windows]

    # ------------------------------------------------------------------------------------------------ scoring

    def _fp_score(self, rows: list[Row], requests) -> list[tuple[int, tuple[float, bool]]]:
        """``(request index, (log-likelihood, greedy))`` for every request in ``rows`` (one model call)."""
        keep = sorted({p for row in rows for _, positions in logit_positions(row) for p in positions})
        logprobs = F.log_softmax(self._fp_call(rows, keep), dim=-1, dtype=self.softmax_dtype)
        column = {p: k for k, p in enumerate(keep)}
        out = []
        for b, row in enumerate(rows):
            for index, positions in logit_positions(row):
                out.append((index, read_continuation(logprobs[b, [column[p] for p in positions]],
                                                     requests[index][2])))
        return out

    def _fp_call(self, rows: list[Row], keep: list[int]) -> torch.Tensor:
        """Logits ``[rows, len(keep), vocab]`` at positions ``keep`` of the right-padded rows."""
        ids, positions, mask = batch_tensors(rows, self.device, self._fp_mask_dtype())
        extra = {"attention_mask": mask, "position_ids": positions} if mask is not None else {}
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            keep_t = torch.tensor(keep, dtype=torch.long, device=self.device)
            return self.model(input_ids=ids, logits_to_keep=keep_t, **extra).logits

    def _fp_mask_dtype(self) -> torch.dtype:
        dtype = getattr(self.model, "dtype", torch.float32)
        return dtype if dtype.is_floating_point else torch.float32

    # ------------------------------------------------------------------------------------------ when to use it

    def _fp_use_packing(self) -> bool:
        if not self._fp_share or self.backend != "causal" or not isinstance(self.batch_size, int):
            return False
        if getattr(self.model.config, "_attn_implementation", None) not in MASKABLE:
            return False
        if self._fp_packing_checked is None:
            self._fp_packing_checked = self._fp_packing_works()
        return self._fp_packing_checked

    def _fp_packing_works(self) -> bool:
        """Score a short packed example (two options sharing a context, and a request of its own) both ways; any
        disagreement or error (a model that ignores ``position_ids`` or ``logits_to_keep``...) means HFLM's code."""
        tokens = self.tok_encode(CHECK_TEXT)
        if len(tokens) < 12:
            return False
        ctx = tokens[:5]
        requests = [(None, ctx, tokens[5:9]), (None, ctx, tokens[9:12]), (None, tokens[:2], tokens[2:7])]
        try:
            rows = plan_rows([(c, k) for _, c, k in requests], self.max_length)
            ours = dict(self._fp_score(rows, requests))
        except Exception as exc:  # noqa: BLE001 - any failure: use lm-eval's own code
            log.warning("fairpriv: shared-context scoring is not available for this model (%r); using HFLM's", exc)
            return False
        theirs = super()._loglikelihood_tokens(requests, disable_tqdm=True)
        tolerance = 1e-3 if self._fp_mask_dtype() == torch.float32 else 5e-2
        worst = max(abs(ours[i][0] - theirs[i][0]) / max(1.0, abs(theirs[i][0])) for i in range(len(requests)))
        if worst > tolerance:
            log.warning("fairpriv: shared-context scoring disagrees with HFLM's on this model (relative difference "
                        "%.2e); using HFLM's", worst)
        return worst <= tolerance


def read_continuation(logprobs: torch.Tensor, continuation: Sequence[int]) -> tuple[float, bool]:
    """``(sum of the continuation's log-probabilities, whether each token is the argmax)`` from ``logprobs``
    ``[len(continuation), vocab]``, as HFLM computes them."""
    target = torch.tensor(continuation, dtype=torch.long, device=logprobs.device)
    greedy = bool((logprobs.argmax(dim=-1) == target).all())
    return float(torch.gather(logprobs, 1, target.unsqueeze(-1)).sum()), greedy


def batch_tensors(rows: list[Row], device, mask_dtype: torch.dtype):
    """Right-padded ``input_ids`` and ``position_ids`` ``[rows, length]``, and the additive attention mask
    ``[rows, 1, length, length]`` (``None`` when no row is packed: the model's own causal mask is the same)."""
    length = max(len(row.tokens) for row in rows)
    ids = torch.zeros((len(rows), length), dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, :len(row.tokens)] = torch.tensor(row.tokens)
        positions[b, :len(row.positions)] = torch.tensor(row.positions)
    if not any(row.packed for row in rows):
        return ids.to(device), None, None
    allowed = torch.stack([allowed_tensor(row, length) for row in rows]).unsqueeze(1)
    mask = torch.zeros(allowed.shape, dtype=mask_dtype).masked_fill(~allowed, torch.finfo(mask_dtype).min)
    return ids.to(device), positions.to(device), mask.to(device)


def allowed_tensor(row: Row, length: int) -> torch.Tensor:
    """:func:`fairpriv.models.packing.allowed` for every (query, key) of ``row`` padded to ``length``."""
    shared, segment = mask_spec(row, length)
    seg = torch.tensor(segment)
    index = torch.arange(length)
    causal = index[None, :] <= index[:, None]
    return causal & ((index[None, :] < shared) | (seg[None, :] == seg[:, None]))
