"""One training loop for the fine-tuning interventions: SFT, DP fine-tuning (Opacus) and, later, CDA.

The science needs the private and the non-private run to differ *only* in the privacy mechanism, so both use this
file: the same tokenisation, the same batches, the same loss and the same optimiser.

* DEAN / SPIN (arXiv 2410.16672) fine-tunes on privacy data (full fine-tuning, LoRA, DoRA) with the loss on the
  response tokens only: prompt and response are tokenised separately, their ids concatenated, prompt labels -100.
* DP bias amplification (arXiv 2402.04489) compares DP-SGD/DP-Adam fine-tuning with the non-private run.

The loss is the mean token cross-entropy *within each sequence*, then the mean over the batch. It is computed from
the logits here, never with the Hugging Face ``labels=`` loss, which averages over all tokens of a batch and so
couples the samples (under DP that breaks the per-sample sensitivity argument; see ``docs/science.md`` §3).
Batches are right-padded with an attention mask, labels -100 on padding and explicit per-sample position ids, so
padding contributes exactly zero.

Precision: only the *trainable* parameters must be float32. LoRA/DoRA adapters are float32 (peft's
``autocast_adapter_dtype``) over a frozen base that keeps its dtype, so a model loaded with ``dtype=bfloat16`` (or
float16) trains its adapters in float32 with float32 AdamW state; the loss is computed from the logits in float32.
Full fine-tuning updates every weight in place and so needs ``dtype=float32`` (refused otherwise, before any change).

Devices: batches, position ids and masks are built directly on the device of the model's input embeddings, labels
follow the logits; the only CPU tensors are the seeded index permutations of the plan (a CPU generator, so the
order is the same on every machine) and the scalars torch keeps there (AdamW's step count). A loss is read as a
Python number once per optimiser step, not once per micro-batch.

Pure pieces (``encode_record``, ``collate``, ``sequence_losses``) are separate from the loop, so tests call them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from fairpriv.artifacts import MODEL_DIR, ArtifactError
from fairpriv.data.pairs import load_pairs
from fairpriv.data.texts import is_text_source, load_text
from fairpriv.hashing import canonical_hash
from fairpriv.interventions.base import ConfigError, Intervention, InterventionConfig
from fairpriv.names import did_you_mean
from fairpriv.text.cda import augment

IGNORE = -100
DEFAULT_LR = {"full": 2e-5, "lora": 2e-4, "dora": 2e-4}
ALL_LINEAR = "all-linear"
CDA_ATTRIBUTES = ("gender", "religion", "race")  # the term lists of fairpriv.text (gender_pairs, group_terms)


# --------------------------------------------------------------------------------------------------------------
# Configuration shared by every training intervention (field names are ``--model_args`` keys)
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainFields(InterventionConfig):
    """Data and optimisation settings common to sft and dp.

    ``train_batch_size`` is the number of examples per optimiser step (the logical batch; under DP the *expected*
    Poisson batch). ``lr`` None picks 2e-5 for full fine-tuning and 2e-4 for LoRA/DoRA.
    """

    data: str = "builtin"
    kind: Literal["fairness", "privacy", "utility"] = "privacy"
    n_samples: int | None = None
    seed: int = 0
    method: Literal["full", "lora", "dora"] = "lora"
    lr: float | None = None
    weight_decay: float = 0.0
    epochs: int = 1
    max_steps: int | None = None
    train_batch_size: int = 8
    train_max_length: int = 256
    train_chat_template: bool = False
    train_dropout: float | None = None
    eval_fraction: float = 0.0
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: str = ALL_LINEAR
    cda_ratio: float | None = None
    cda_mode: Literal["two-sided", "one-sided"] = "two-sided"
    cda_attribute: str = "gender"

    def __post_init__(self) -> None:
        for key in ("epochs", "train_batch_size", "lora_r"):
            _require(getattr(self, key) >= 1, key, "must be at least 1", getattr(self, key))
        for key in ("n_samples", "max_steps"):
            _require(getattr(self, key) is None or getattr(self, key) >= 1, key, "must be at least 1 (or none)",
                     getattr(self, key))
        _require(0 <= self.seed < 2**63, "seed", "must be in [0, 2^63) (torch's generators take it)", self.seed)
        _require(self.train_max_length >= 2, "train_max_length", "must be at least 2", self.train_max_length)
        self._check_rates()
        self._check_fractions()
        self._check_cda_attribute()

    def _check_rates(self) -> None:
        _require(self.lr is None or 0 < self.lr < math.inf, "lr",
                 "must be positive and finite (or none for the method's default)", self.lr)
        _require(0 < self.lora_alpha < math.inf, "lora_alpha", "must be positive and finite", self.lora_alpha)
        _require(0 <= self.weight_decay < math.inf, "weight_decay", "must be >= 0 and finite", self.weight_decay)

    def _check_fractions(self) -> None:
        _require(0 <= self.eval_fraction < 1, "eval_fraction", "must be in [0, 1)", self.eval_fraction)
        _require(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)", self.lora_dropout)
        _require(self.train_dropout is None or 0 <= self.train_dropout < 1, "train_dropout",
                 "must be in [0, 1) (or none to keep the model's own dropout)", self.train_dropout)
        _require(self.cda_ratio is None or 0 <= self.cda_ratio <= 1, "cda_ratio",
                 "must be in [0, 1] (or none for no counterfactual augmentation)", self.cda_ratio)

    def _check_cda_attribute(self) -> None:
        if self.cda_attribute not in CDA_ATTRIBUTES:
            raise ConfigError(f"'cda_attribute' must be one of {', '.join(CDA_ATTRIBUTES)}; got "
                              f"{self.cda_attribute!r}.{did_you_mean(self.cda_attribute, CDA_ATTRIBUTES)}")
        _require(self.cda_attribute == "gender" or self.cda_ratio is not None, "cda_attribute",
                 "only applies with counterfactual augmentation: add cda_ratio (e.g. cda_ratio=1) or use cda-hf",
                 self.cda_attribute)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    """Refuse ``value`` unless ``ok``; the message names the key, the rule it must meet (the fix) and the value.
    Bounds read ``0 < x < math.inf`` so that nan (every comparison false) and inf are refused too."""
    if not ok:
        raise ConfigError(f"'{key}' {rule}; got {value!r}.")


# --------------------------------------------------------------------------------------------------------------
# Data: config -> records (lazy imports of the data and CDA modules)
# --------------------------------------------------------------------------------------------------------------


def load_records(cfg: TrainFields) -> tuple[list[dict], dict[str, Any]]:
    """The records named by ``cfg`` (data, kind, n_samples, seed) and their description (source, sha256, n).
    Plain-text sources (``bold-wiki``, ``.txt``, ``{"text"}`` ``.jsonl``; see :mod:`fairpriv.interventions.training.cda`)
    give ``{"text"}`` records (loss on every token), the others prompt/response pairs."""
    if is_text_source(cfg.data):
        pairs = load_text(cfg.data, n=cfg.n_samples, seed=cfg.seed)
    else:
        pairs = load_pairs(cfg.data, cfg.kind, n=cfg.n_samples, seed=cfg.seed)
    return list(pairs.records), {"data": pairs.describe()}


def training_records(records: Sequence[dict], cfg: TrainFields) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(train, held-out, facts): the held-out records are split off *before* CDA, so no counterfactual copy of a
    held-out record is trained on; CDA (when ``cda_ratio`` is set) then augments the training part only."""
    train, held_out = split_eval(list(records), cfg.eval_fraction, cfg.seed)
    facts: dict[str, Any] = {}
    if cfg.cda_ratio is not None:
        train, facts["cda"] = apply_cda(train, cfg.cda_mode, cfg.cda_ratio, cfg.seed, cfg.cda_attribute)
    facts["training_records_sha256"] = canonical_hash(train)
    return train, held_out, facts


def apply_cda(records: list[dict], mode: str, ratio: float, seed: int,
              attribute: str = "gender") -> tuple[list[dict], dict]:
    out, stats = augment(records, mode=mode, ratio=ratio, seed=seed, attribute=attribute)
    return list(out), stats.to_dict()


def split_eval(items: Sequence, fraction: float, seed: int) -> tuple[list, list]:
    """Seeded (train, held-out) split; the held-out part has round(fraction * n) items, at least 1 if fraction > 0."""
    if fraction <= 0:
        return list(items), []
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    k = max(1, round(fraction * len(items)))
    if k >= len(items):
        raise ConfigError(f"'eval_fraction' {fraction} leaves no training examples out of {len(items)}; lower it")
    return [items[i] for i in order[k:]], [items[i] for i in order[:k]]


# --------------------------------------------------------------------------------------------------------------
# Pure pieces: tokenisation, collation, loss
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (``IGNORE`` where no loss is taken)."""

    ids: tuple[int, ...]
    labels: tuple[int, ...]


def encode_record(record: dict, tokenizer: Any, max_length: int, chat_template: bool = False) -> Example | None:
    """``{"prompt","response"}`` -> loss on response + EOS only; ``{"text"}`` -> loss on every token.

    Truncated to ``max_length`` tokens from the end; None when no labelled token is left.
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if "text" in record and "prompt" not in record:
        ids = _tokens(tokenizer, record["text"], True) + eos
        labels = list(ids)
    else:
        head = _prompt_tokens(tokenizer, record["prompt"], chat_template)
        tail = _tokens(tokenizer, record["response"], False) + eos
        ids, labels = head + tail, [IGNORE] * len(head) + tail
    ids, labels = ids[:max_length], labels[:max_length]
    return Example(tuple(ids), tuple(labels)) if any(x != IGNORE for x in labels[1:]) else None


def _tokens(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _prompt_tokens(tokenizer: Any, prompt: str, chat_template: bool) -> list[int]:
    if not chat_template:
        return _tokens(tokenizer, prompt, True)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("'train_chat_template' is true but the tokenizer has no chat template; set it to false")
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return _tokens(tokenizer, text, False)


def encode_records(records: Iterable[dict], tokenizer: Any, max_length: int,
                   chat_template: bool = False) -> tuple[list[Example], int]:
    """Encode every record; returns (examples, number dropped because nothing labelled was left)."""
    out = [encode_record(r, tokenizer, max_length, chat_template) for r in records]
    kept = [e for e in out if e is not None]
    return kept, len(out) - len(kept)


def collate(examples: Sequence[Example], pad_id: int, device: Any = None) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: input ids, attention mask, contiguous [B, T] position ids, labels.

    The rows are padded as Python lists and each tensor is made once, directly on ``device`` (None: the CPU), so
    a batch for a GPU model costs one host-to-device copy per tensor and nothing is left on the CPU.
    """
    width = max((len(e.ids) for e in examples), default=0)
    rows = [(list(e.ids), list(e.labels), len(e.ids), width - len(e.ids)) for e in examples]
    ids = [i + [pad_id] * pad for i, _, _, pad in rows]
    labels = [lab + [IGNORE] * pad for _, lab, _, pad in rows]
    mask = [[1] * n + [0] * pad for _, _, n, pad in rows]
    positions = torch.arange(width, device=device).repeat(len(examples), 1)  # repeat: Opacus needs [B, T] storage
    return {"input_ids": _long(ids, width, device), "attention_mask": _long(mask, width, device),
            "position_ids": positions, "labels": _long(labels, width, device)}


def _long(rows: list[list[int]], width: int, device: Any) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long, device=device).reshape(len(rows), width)


def sequence_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each sequence's labelled tokens: shape [B] (0 for a sequence without)."""
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    token = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
    counts = (targets != IGNORE).sum(dim=1)
    return token.sum(dim=1) / counts.clamp(min=1)


def forward_losses(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sequence losses of ``model`` on a collated batch (float32, whatever the model's dtype). The inputs are
    moved to the device of the input embeddings (a no-op for a batch collated there), the labels to the logits'
    device (the last device of a model split over several)."""
    device = model_device(model)
    inputs = {k: batch[k].to(device, non_blocking=True) for k in ("input_ids", "attention_mask", "position_ids")}
    logits = model(**inputs, use_cache=False).logits
    return sequence_losses(logits, batch["labels"].to(logits.device, non_blocking=True))


def model_device(model: Any) -> torch.device:
    """Where a batch for ``model`` belongs: the device of its input embeddings (else of its first parameter)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    return weight.device if isinstance(weight, torch.Tensor) else next(model.parameters()).device


# --------------------------------------------------------------------------------------------------------------
# Model preparation: trainable parameters, LoRA/DoRA, dropout
# --------------------------------------------------------------------------------------------------------------


def pad_id(tokenizer: Any) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def check_trainable(model: Any) -> None:
    """Every *trainable* parameter must be float32 (its AdamW update, tiny next to the weight, would be rounded
    away in bfloat16/float16); a frozen base may be in any dtype, e.g. bfloat16 under float32 LoRA adapters."""
    bad = [(n, p.dtype) for n, p in model.named_parameters() if p.requires_grad and p.dtype != torch.float32]
    if bad:
        raise ConfigError(f"training needs float32 trainable weights, but {len(bad)} trainable parameters are "
                          f"{_dtype_names(d for _, d in bad)} (first: {bad[0][0]}); load the model with "
                          f"dtype=float32, or train float32 adapters on the frozen base with method=lora or "
                          f"method=dora")


def check_full_precision(model: Any, method: str = "full") -> None:
    """``method=full`` trains every weight in place, so every weight must be float32 (no master-weight copy)."""
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes - {torch.float32}:
        raise ConfigError(f"method={method} trains every weight in place and needs float32 weights, but the model's "
                          f"weights are {_dtype_names(dtypes)}; pass dtype=float32 (full fine-tuning in float32), "
                          f"or method=lora (or method=dora) to train float32 adapters on the frozen "
                          f"{_dtype_names(dtypes - {torch.float32})} base")


def _dtype_names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(sorted({str(d).replace("torch.", "") for d in dtypes}))


def dtype_facts(model: Any) -> dict[str, str | None]:
    """The dtypes of the trainable and of the frozen parameters (None when there are none), for the facts."""
    groups: dict[bool, set] = {True: set(), False: set()}
    for p in model.parameters():
        groups[p.requires_grad].add(p.dtype)
    return {"trainable": _dtype_names(groups[True]) or None, "frozen": _dtype_names(groups[False]) or None}


def block_linear_names(model: Any) -> list[str]:
    """Qualified names of the linear layers inside the decoder blocks (a numbered ModuleList), not the LM head."""
    linear = _linear_types()
    return [n for n, m in model.named_modules()
            if isinstance(m, linear) and any(part.isdigit() for part in n.split("."))]


def _linear_types() -> tuple[type, ...]:
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def lora_targets(model: Any, spec: str) -> list[str]:
    """``all-linear`` -> every linear layer in the decoder blocks; else ``q_proj+v_proj``: block layers by suffix."""
    names = block_linear_names(model)
    if spec != ALL_LINEAR:
        wanted = [s for s in spec.replace(" ", "+").split("+") if s]
        names = [n for n in names if n.rsplit(".", 1)[-1] in wanted]
    if not names:
        raise ConfigError(f"'lora_targets'={spec!r} matches no linear layer in the decoder blocks; "
                          f"use all-linear or names like q_proj+v_proj")
    return names


def add_adapters(model: Any, cfg: TrainFields) -> Any:
    """Wrap ``model`` with LoRA (or DoRA) adapters on ``cfg.lora_targets``; only adapters stay trainable."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_targets(model, cfg.lora_targets), use_dora=cfg.method == "dora",
                      bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora, autocast_adapter_dtype=True)  # float32 adapters on a bf16/fp16 base


def prepare(model: Any, cfg: TrainFields) -> Any:
    """The model to train: seeded float32 adapters for lora/dora (the base is frozen and keeps its dtype: peft's
    ``autocast_adapter_dtype`` makes adapters on a bfloat16/float16 base float32), every parameter trainable for
    full fine-tuning (float32 only: refused before any weight changes otherwise)."""
    if cfg.method == "full":
        check_full_precision(model, cfg.method)
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    torch.manual_seed(cfg.seed)
    model = add_adapters(model, cfg)
    check_trainable(model)
    return model


def finish(model: Any) -> Any:
    """Merge adapters into the base weights (``merge_and_unload``), make every weight trainable again, eval mode."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


@contextlib.contextmanager
def train_mode(model: Any, dropout: float | None) -> Iterator[None]:
    """``model.train()`` with every dropout probability set to ``dropout`` (None keeps the model's), then eval."""
    saved = _set_dropout(model, dropout) if dropout is not None else []
    model.train()
    try:
        yield
    finally:
        model.eval()
        for obj, attr, value in saved:
            setattr(obj, attr, value)


def _set_dropout(model: Any, p: float) -> list[tuple[Any, str, float]]:
    saved = []
    for module in model.modules():
        attr = "p" if isinstance(module, torch.nn.Dropout) else "attention_dropout"
        if isinstance(getattr(module, attr, None), float):
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, p)
    return saved


def make_optimizer(model: Any, cfg: TrainFields) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


# --------------------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------------------

# A plan yields physical batches: (examples, weight of their mean loss, whether the optimiser should step after).
Plan = Iterable[tuple[list[Example], float, bool]]
# A backward function takes (examples, weight), runs forward + backward, returns the batch's mean loss (or None):
# a float, or a 0-dim tensor (read once per optimiser step, so the loop does not wait for the device every batch).
Backward = Callable[[list[Example], float], "float | torch.Tensor | None"]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def total_steps(per_epoch: int, epochs: int, max_steps: int | None) -> int:
    return min(per_epoch * epochs, max_steps) if max_steps else per_epoch * epochs


def shuffled_plan(examples: Sequence[Example], cfg: TrainFields, micro_batches: int = 1) -> Plan:
    """Non-private batches: a seeded permutation per epoch, cut into logical batches, each into micro-batches.

    A micro-batch's mean loss is weighted by its share of the logical batch, so accumulation gives exactly the
    mean over the logical batch (also for a short last batch).
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(examples), generator=gen).tolist()
        for start in range(0, len(order), cfg.train_batch_size):
            logical = order[start:start + cfg.train_batch_size]
            chunks = [c for c in _split(logical, micro_batches) if c]
            for i, chunk in enumerate(chunks):
                yield [examples[j] for j in chunk], len(chunk) / len(logical), i == len(chunks) - 1


def _split(items: list, parts: int) -> list[list]:
    size = math.ceil(len(items) / parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def plain_backward(model: Any, pad: int) -> Backward:
    """Forward, weighted mean of the per-sequence losses, backward."""

    device = model_device(model)

    def backward(examples: list[Example], weight: float) -> torch.Tensor:
        losses = forward_losses(model, collate(examples, pad, device))
        (losses.mean() * weight).backward()
        return losses.detach().mean()

    return backward


@dataclasses.dataclass
class LoopResult:
    """Steps taken and each step's mean training loss (None for a step whose Poisson batch was empty)."""

    steps: int
    step_losses: list[float | None]

    @property
    def first_loss(self) -> float | None:
        return next((x for x in self.step_losses if x is not None), None)

    @property
    def last_loss(self) -> float | None:
        return next((x for x in reversed(self.step_losses) if x is not None), None)


def run(optimizer: Any, plan: Plan, backward: Backward, steps: int, desc: str = "fairpriv train") -> LoopResult:
    """Run ``plan`` until ``steps`` optimiser steps were taken. Steps are counted by the *inner* torch optimiser's
    post-step hook, so a DP optimiser that skips a step between physical batches is counted right."""
    from tqdm.auto import tqdm

    counter, bar = _StepCounter(_inner(optimizer)), tqdm(total=steps, desc=desc, leave=False)
    try:
        for examples, weight, step_after in plan:
            counter.add(backward(examples, weight), len(examples))
            if step_after:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                counter.update_bar(bar)
            if counter.steps >= steps:
                break
    finally:
        counter.remove()
        bar.close()
    return LoopResult(counter.steps, counter.losses)


def _inner(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "original_optimizer", optimizer)


class _StepCounter:
    """Counts real optimiser steps and the example-weighted mean loss of each step's physical batches."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.steps, self.losses, self._sum, self._n, self._shown = 0, [], 0.0, 0, 0
        self._handle = optimizer.register_step_post_hook(self._on_step)

    def add(self, loss: float | torch.Tensor | None, n: int) -> None:
        if loss is not None and n:
            self._sum, self._n = self._sum + loss * n, self._n + n

    def _on_step(self, *_: Any) -> None:
        self.steps += 1
        self.losses.append(_number(self._sum / self._n) if self._n else None)
        self._sum, self._n = 0.0, 0

    def update_bar(self, bar: Any) -> None:
        if self.steps > self._shown:
            bar.update(self.steps - self._shown)
            bar.set_postfix(loss="empty batch" if self.losses[-1] is None else f"{self.losses[-1]:.4f}")
            self._shown = self.steps

    def remove(self) -> None:
        self._handle.remove()


@torch.no_grad()
def mean_loss(model: Any, examples: Sequence[Example], pad: int, batch_size: int = 8) -> float | None:
    """Mean per-sequence loss over ``examples`` (eval mode, no gradients); None when there are none."""
    if not examples:
        return None
    was_training, total, device = model.training, 0.0, model_device(model)
    model.eval()
    for start in range(0, len(examples), batch_size):
        total = total + forward_losses(model, collate(examples[start:start + batch_size], pad, device)).sum()
    model.train(was_training)
    return _number(total) / len(examples)


def _number(value: float | torch.Tensor) -> float:
    """A loss as a Python float (for a tensor: the one device-to-host copy, made where the number is needed)."""
    return float(value)


# --------------------------------------------------------------------------------------------------------------
# Saving and loading the trained weights (the artifact's ``model/`` folder)
# --------------------------------------------------------------------------------------------------------------

WEIGHTS = f"{MODEL_DIR}/model.safetensors"


def save_model(model: Any, tokenizer: Any, out_dir: Any) -> None:
    """A plain Hugging Face folder (config, safetensors, tokenizer) any lm-eval backend can load."""
    folder = out_dir / MODEL_DIR
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def load_weights(model: Any, artifact: Any) -> Any:
    """Load ``model/model.safetensors`` into ``model`` strictly (tied aliases excepted); refuse shape mismatches."""
    weights = artifact.load_tensors(WEIGHTS)
    own = model.state_dict()
    problems = _shape_problems(weights, own) + _key_problems(weights, own)
    if problems:
        raise ArtifactError(f"artifact {artifact.path} does not fit this model ({'; '.join(problems[:3])}); it was "
                            f"fitted on {artifact.manifest.get('base_model', {}).get('source', '?')}: "
                            f"evaluate it with that base model, or fit a new artifact")
    model.load_state_dict(weights, strict=False)
    return model


def _shape_problems(weights: dict, own: dict) -> list[str]:
    return [f"{k}: artifact {list(v.shape)} vs model {list(own[k].shape)}"
            for k, v in weights.items() if k in own and own[k].shape != v.shape]


def _key_problems(weights: dict, own: dict) -> list[str]:
    loaded = {own[k].data_ptr() for k in weights if k in own}
    missing = [k for k in own if k not in weights and own[k].data_ptr() not in loaded]  # tied aliases are fine
    extra = [k for k in weights if k not in own]
    return [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in extra]


# --------------------------------------------------------------------------------------------------------------
# A training session: records -> examples -> prepared model -> (loop run by sft/dp) -> merged model + facts
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    model: Any
    train: list[Example]
    held_out: list[Example]
    pad: int
    facts: dict[str, Any]


def start(model: Any, tokenizer: Any, records: Sequence[dict], cfg: TrainFields) -> Session:
    """:func:`encode` the records, then make the model trainable (adapters for lora/dora)."""
    session = encode(tokenizer, records, cfg)
    session.model = prepare(model, cfg)
    return session


def encode(tokenizer: Any, records: Sequence[dict], cfg: TrainFields) -> Session:
    """Split off the held-out records, apply CDA and tokenise; the session's model is set by :func:`start` (or by
    the caller, after checks that need the number of training sequences, e.g. DP's privacy plan)."""
    train_records, held_records, facts = training_records(records, cfg)
    train, dropped = encode_records(train_records, tokenizer, cfg.train_max_length, cfg.train_chat_template)
    held_out, held_dropped = encode_records(held_records, tokenizer, cfg.train_max_length, cfg.train_chat_template)
    if not train:
        raise ConfigError(f"no training example has a response token within train_max_length="
                          f"{cfg.train_max_length} ({len(train_records)} records); raise train_max_length or check "
                          f"the data")
    facts["n_dropped_no_response"] = dropped + held_dropped
    return Session(None, train, held_out, pad_id(tokenizer), facts)


def conclude(session: Session, result: LoopResult, cfg: TrainFields) -> tuple[Any, dict[str, Any]]:
    """Merge adapters, measure the held-out loss, and describe the run."""
    trainable = sum(p.numel() for p in session.model.parameters() if p.requires_grad)
    dtypes = dtype_facts(session.model)
    model = finish(session.model)
    facts = {
        **session.facts, "method": cfg.method, "seed": cfg.seed, "lr": cfg.learning_rate, "epochs": cfg.epochs,
        "steps": result.steps, "train_batch_size": cfg.train_batch_size, "trainable_params": trainable,
        "dtypes": dtypes, "n_train": len(session.train), "n_eval": len(session.held_out),
        "train_loss_first_step": result.first_loss,
        "train_loss_last_step": result.last_loss,
        "eval_loss": mean_loss(model, session.held_out, session.pad),
        "loss": "per-sequence mean token cross-entropy (response tokens of prompt/response records, every token "
                "of plain-text records), averaged over sequences",
    }
    if cfg.method != "full":
        facts["lora"] = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                         "targets": cfg.lora_targets, "merged": True}
    return model, facts


class TrainingIntervention(Intervention):
    """fit = load records -> ``train`` -> save ``model/``; apply = load ``model/model.safetensors``."""

    def train(self, model: Any, tokenizer: Any, records: Sequence[dict]) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def fit(self, model: Any, tokenizer: Any, out_dir: Any) -> dict[str, Any]:
        records, facts = load_records(self.config)
        trained, run_facts = self.train(model, tokenizer, records)
        save_model(trained, tokenizer, out_dir)
        return {**facts, **run_facts}

    def apply(self, model: Any, artifact: Any) -> Any:
        return load_weights(model, artifact)
