"""``sft``: supervised fine-tuning on prompt/response pairs (full, LoRA or DoRA), the non-private baseline.

DEAN / SPIN (arXiv 2410.16672) shows that privacy SFT raises a model's privacy awareness and lowers its fairness
awareness; by default this intervention reproduces that privacy SFT (``kind=privacy``). It is also the non-private
reference of the DP bias-amplification study (arXiv 2402.04489): ``dp`` shares its data, loop and loss exactly.

Usage::

    lm_eval --model sft-hf --model_args pretrained=fairpriv:smollm2-135m-instruct-q4_1,method=lora,epochs=1 ...
    fairpriv fit sft --model_args pretrained=...,kind=privacy --out runs/sft-privacy

The artifact holds the trained (LoRA-merged) model as a plain Hugging Face folder ``model/``, so it also works with
any other lm-eval backend: ``--model hf --model_args pretrained=runs/sft-privacy/model``.

Keys: ``train_batch_size`` is the number of examples per optimiser step; ``grad_accum`` splits each step into that
many micro-batches (same update, less memory). ``cda_ratio`` applies counterfactual data augmentation first.

Precision: with ``method=lora`` or ``dora`` the base may be loaded in half precision (``dtype=bfloat16`` or
``float16``): the adapters, their optimiser state and the loss are float32 and the base is frozen; the merged
``model/`` is saved in the base's dtype. ``method=full`` needs ``dtype=float32`` and refuses other weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.summaries import TrainingSummary
from fairpriv.interventions.training import loop
from fairpriv.interventions.training.loop import TrainFields, TrainingIntervention


@dataclasses.dataclass(frozen=True)
class SFTConfig(TrainFields):
    grad_accum: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.grad_accum < 1 or self.train_batch_size % self.grad_accum:
            raise ConfigError(
                f"'grad_accum' must be a divisor of train_batch_size={self.train_batch_size} (each step's "
                f"{self.train_batch_size} examples are split into grad_accum micro-batches); got {self.grad_accum!r}."
            )


class SFT(TrainingSummary, TrainingIntervention):  # summary (privacy, data): TrainingSummary
    name = "sft"
    Config = SFTConfig
    version = "1"
    description = "supervised fine-tuning (full / LoRA / DoRA) on prompt-response pairs (DEAN's privacy SFT)"

    def train(self, model: Any, tokenizer: Any, records: Sequence[dict]) -> tuple[Any, dict[str, Any]]:
        """Fine-tune ``model`` in place on ``records``; returns the merged model and the run's facts."""
        cfg = self.config
        session = loop.start(model, tokenizer, records, cfg)
        per_epoch = loop.steps_per_epoch(len(session.train), cfg.train_batch_size)
        steps = loop.total_steps(per_epoch, cfg.epochs, cfg.max_steps)
        optimizer = loop.make_optimizer(session.model, cfg)
        plan = loop.shuffled_plan(session.train, cfg, cfg.grad_accum)
        with loop.train_mode(session.model, cfg.train_dropout):
            result = loop.run(optimizer, plan, loop.plain_backward(session.model, session.pad), steps, "sft")
        model, facts = loop.conclude(session, result, cfg)
        return model, {**facts, "grad_accum": cfg.grad_accum, "private": False}
