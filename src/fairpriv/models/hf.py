"""One generic lm-eval model for every intervention: ``<name>-hf`` is HFLM plus that intervention.

The class for an intervention is made on first use (``model_class(name)``) and registered lazily in lm-eval's
model registry as ``"fairpriv.models.hf:lm_for__<name>"``. Its ``--model_args`` are HFLM's own arguments, the
intervention's config fields, ``artifact=<folder>`` (use a fitted artifact instead of fitting), ``refit=true``
(ignore the on-demand cache) and ``allow_base_mismatch=true`` (apply an artifact fitted on another base model; the
override is recorded in the results). Anything else fails with the list of accepted keys.

The model is changed in ``_create_model``, the same place where HFLM applies ``peft`` and ``delta``. The
intervention, its config, the artifact hash and the facts in its manifest reach the results JSON through
``get_model_info()``; ``fairpriv_cache_salt`` keeps lm-eval's ``--use_cache`` from mixing variants.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, ClassVar

from lm_eval.models.huggingface import HFLM

from fairpriv.artifacts import Artifact
from fairpriv.interventions import registry
from fairpriv.interventions.base import ConfigError, Intervention
from fairpriv.interventions.fitting import fit_cached
from fairpriv.lm_eval_compat import CLASS_PREFIX
from fairpriv.modelargs import split_args
from fairpriv.modelref import base_model_identity, resolve
from fairpriv.models import variant
from fairpriv.models.loglikelihood import SCORING_KEYS, PackedScoring
from fairpriv.models.variant import OWN_KEYS, as_flag, follow_lm_eval_logging

log = logging.getLogger(__name__)

HFLM_KEYS = frozenset(inspect.signature(HFLM.__init__).parameters) - {"self", "kwargs"}
# HFLM forwards unknown keys to from_pretrained; these are the ones worth passing on.
FROM_PRETRAINED_KEYS = frozenset(
    {"attn_implementation", "device_map", "low_cpu_mem_usage", "load_in_8bit", "load_in_4bit",
     "bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant"}
)
HF_KEYS = HFLM_KEYS | FROM_PRETRAINED_KEYS | SCORING_KEYS  # every key an HF cell or <name>-hf takes


class PlainLM(PackedScoring, HFLM):
    """HFLM with fairpriv's faster log-likelihood (:mod:`fairpriv.models.loglikelihood`): what ``fairpriv run``
    evaluates a variant without an intervention on, so that it is scored by the same code as its interventions."""


class InterventionLM(PackedScoring, HFLM):
    """HFLM whose model is changed by ``intervention_cls`` right after loading."""

    intervention_cls: ClassVar[type[Intervention]]

    def __init__(self, pretrained: Any, artifact: str | None = None, refit: bool = False,
                 allow_base_mismatch: bool = False, **kwargs: Any) -> None:
        follow_lm_eval_logging()
        artifact = self._take_alias(kwargs, artifact)
        config_args, hf_args = self._split_args(kwargs)
        self.intervention = self.intervention_cls(self.intervention_cls.Config.from_args(config_args, owner=self._owner()))
        self._fp_given_keys = set(config_args)
        self._fp_source, self._fp_artifact_arg = pretrained, artifact
        self._fp_refit = as_flag(refit, "refit", self._owner())
        self._fp_allow_mismatch = as_flag(allow_base_mismatch, "allow_base_mismatch", self._owner())
        self._fp_base_mismatch: dict[str, Any] | None = None
        self.artifact: Artifact | None = None
        self.artifact_source: str | None = None
        self._fp_applied = False
        self._fp_base_identity: dict | None = None
        resolved = resolve(pretrained) if isinstance(pretrained, str) else pretrained
        super().__init__(pretrained=resolved, **hf_args)
        if not self._fp_applied:  # an in-memory model: HFLM skipped _create_model
            self._apply_intervention()

    @classmethod
    def _owner(cls) -> str:
        return f"model '{cls.intervention_cls.name}-hf'"

    @classmethod
    def accepted_keys(cls) -> list[str]:
        alias = {cls.intervention_cls.artifact_alias} - {None}
        return sorted(HF_KEYS | OWN_KEYS | alias | set(cls.intervention_cls.Config.keys()))

    @classmethod
    def _take_alias(cls, kwargs: dict[str, Any], artifact: str | None) -> str | None:
        return variant.take_alias(cls.intervention_cls, kwargs, artifact, cls._owner())

    @classmethod
    def _split_args(cls, kwargs: dict[str, Any]) -> tuple[dict, dict]:
        """(config keys, HFLM and ``from_pretrained`` keys); anything else is an error listing what is accepted."""
        config_keys = set(cls.intervention_cls.Config.keys())
        config, hf = split_args(kwargs, [config_keys, HF_KEYS - config_keys], cls._owner(),
                                cls.accepted_keys())
        return config, hf

    def _create_model(self, pretrained: str, *args: Any, **kwargs: Any) -> None:
        super()._create_model(pretrained, *args, **kwargs)
        self._apply_intervention()

    def _apply_intervention(self) -> None:
        self._fp_dtype = getattr(self._model, "dtype", None)  # the loaded weights' dtype: part of the artifact key
        self.artifact, self.artifact_source = self._resolve_artifact()
        self._model = self.intervention.apply(self._model, self.artifact) or self._model
        self._model.eval()
        self._fp_applied = True
        log.info("fairpriv: applied '%s' (%s artifact %s)", self.intervention.name, self.artifact_source,
                 self.artifact.hash[:12] if self.artifact else "none")

    def _resolve_artifact(self) -> tuple[Artifact | None, str | None]:
        if self._fp_artifact_arg:
            art, self.intervention, self._fp_base_mismatch = variant.given_artifact(
                self._fp_artifact_arg, self.intervention, self._fp_given_keys, self.base_identity(),
                self._fp_allow_mismatch)
            return art, "given"
        if not self.intervention.requires_fit:
            return None, None
        return fit_cached(self.intervention, self._model, self.tokenizer, self.base_identity(), self._fp_refit)

    def base_identity(self) -> dict[str, Any]:
        if self._fp_base_identity is None:
            self._fp_base_identity = base_model_identity(
                self._fp_source, getattr(self, "revision", None) or "main", dtype=getattr(self, "_fp_dtype", None),
                peft=getattr(self, "peft", None), delta=getattr(self, "delta", None),
            )
        return self._fp_base_identity

    @property
    def fairpriv_cache_salt(self) -> str:
        """What tells this variant's cached answers apart from its base model's (see fairpriv.models.cache)."""
        return variant.cache_salt(self.intervention, self.artifact, self.base_identity())

    def get_model_info(self) -> dict[str, Any]:
        info = super().get_model_info()
        info["fairpriv"] = variant.results_block(self.intervention, self.artifact, self.artifact_source,
                                                 self.base_identity(), self._fp_base_mismatch)
        return info


_CLASSES: dict[str, type[InterventionLM]] = {}


def model_class(name: str) -> type[InterventionLM]:
    """The lm-eval model class for intervention ``name`` (made once per process)."""
    if name not in _CLASSES:
        intervention_cls = registry.get(name)
        clash = set(intervention_cls.Config.keys()) & (HF_KEYS | OWN_KEYS)
        if clash:
            raise ConfigError(
                f"intervention '{name}' has config fields {sorted(clash)} that clash with model arguments "
                f"of HFLM/fairpriv; rename them in its Config"
            )
        title = variant.class_title(name)
        attrs = {"intervention_cls": intervention_cls, "__module__": __name__, "__doc__": intervention_cls.description}
        _CLASSES[name] = type(f"{title}HFLM", (InterventionLM,), attrs)
    return _CLASSES[name]


def __getattr__(attr: str) -> type[InterventionLM]:
    """Lazy targets for lm-eval's registry: ``fairpriv.models.hf:lm_for__<name>``."""
    if attr.startswith(CLASS_PREFIX):
        return model_class(attr[len(CLASS_PREFIX):])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
