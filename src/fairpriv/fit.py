"""``fairpriv fit``: materialise an intervention once, outside any evaluation, and reuse it in many.

The artifact lands in ``--out`` or, by default, in the same on-demand cache folder that ``<name>-hf`` looks in for
the same base model, config and dtype, so a later ``lm_eval --model <name>-hf`` with those arguments reuses it.
``--model_args`` takes lm-eval's model keys (:mod:`fairpriv.modelargs`: ``dtype``, ``device``, ``device_map``,
``parallelize``, ``attn_implementation``...) besides the intervention's config keys; the fit runs in float32 unless
``dtype`` says otherwise, and a bfloat16 fit is cached apart from a float32 one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairpriv.artifacts import Artifact, ArtifactError, check_destination, load_artifact
from fairpriv.interventions import get
from fairpriv.interventions.base import ConfigError, Intervention
from fairpriv.interventions.fitting import cache_dir, fit_cached, fit_to
from fairpriv.modelargs import load_options, split_model_args
from fairpriv.modelref import base_model_identity, resolve


def fit_from_args(name: str, model_args: str, out: Path | None = None, device: str | None = None) -> Artifact:
    """Fit intervention ``name`` on the model of ``model_args`` into ``out`` (default: the on-demand cache).
    ``device`` is the ``--device`` flag (``device=`` in ``model_args`` says the same). Every bad input (arguments,
    destination) is refused before the model is loaded."""
    from fairpriv.interventions.training import distributed as procs  # imports torch: only when used

    cls = get(name)
    model_kw, config_kw = split_model_args(parse_model_args(model_args, "--model_args"), cls.Config.keys(),
                                           f"fairpriv fit {name}")
    options = load_options(model_kw, device)
    intervention = cls(cls.Config.from_args(config_kw, owner=f"fairpriv fit {name}"))
    base = base_identity(options)
    dest, owned = (Path(out), False) if out is not None else (cache_dir(intervention, base), True)
    check_destination(dest, name, owned)
    with procs.process_group(options.get("device", "cpu")) as device:  # torchrun: the ranks share the fit
        model, tokenizer = load_model(**{**options, **({"device": device} if "device" in options else {})})
        return procs.rank0_writes(lambda: fit_to(intervention, model, tokenizer, base, dest, owned=owned),
                                  lambda tmp: intervention.fit(model, tokenizer, tmp),
                                  lambda: load_artifact(dest, name))  # rank 0 alone writes dest


def base_identity(options: dict[str, Any]) -> dict[str, Any]:
    """The base-model identity of a model about to be loaded with ``options`` (its dtype resolved from the
    checkpoint's config when ``auto``), the same one ``<name>-hf`` computes from the loaded weights."""
    dtype = resolve_dtype(options["pretrained"], options.get("dtype", "float32"), options.get("revision"),
                          options.get("trust_remote_code", False))
    return base_model_identity(options["pretrained"], options.get("revision") or "main", dtype=dtype)


def parse_model_args(text: str, what: str) -> dict[str, Any]:
    """lm-eval's ``key=value,...`` parsing, but a key given twice is an error instead of the last one winning."""
    from lm_eval.utils import simple_parse_args_string

    pairs = [arg.split("=", 1) for arg in (text or "").split(",") if arg]
    seen: dict[str, list[str]] = {}
    for pair in pairs:
        seen.setdefault(pair[0], []).append(pair[1] if len(pair) > 1 else "")
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    if twice:
        given = "; ".join(f"'{k}' ({', '.join(f'{k}={x}' for x in v)})" for k, v in sorted(twice.items()))
        raise ConfigError(f"{what} gives {given} more than once; give each key once, with the value you mean")
    return simple_parse_args_string(text)


def resolve_dtype(pretrained: str, dtype: str = "float32", revision: str | None = None,
                  trust_remote_code: bool = False):
    """The torch dtype of ``dtype``; ``auto`` reads the checkpoint's ``config.json`` (no weights are loaded), as
    transformers' ``dtype="auto"`` does, and is float32 when the config names no dtype."""
    import torch
    from transformers import AutoConfig

    if dtype != "auto":
        return getattr(torch, dtype)
    config = AutoConfig.from_pretrained(resolve(pretrained), revision=revision or "main",
                                        trust_remote_code=bool(trust_remote_code))
    found = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return getattr(torch, found) if isinstance(found, str) else found or torch.float32


def load_model(pretrained: str, revision: str | None = None, trust_remote_code: bool = False, device: str = "cpu",
               dtype: str = "float32", device_map: str | None = None, attn_implementation: str | None = None):
    """Base model (in ``dtype``, float32 by default; ``auto`` as :func:`resolve_dtype`) on ``device``, or spread
    by ``device_map``, and its tokenizer, with ``fairpriv:NAME`` resolved to the embedded asset."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(pretrained)
    kw = {"revision": revision or "main", "trust_remote_code": bool(trust_remote_code)}
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=resolve_dtype(pretrained, dtype, revision, trust_remote_code),
        device_map=device_map if device_map is not None else {"": device}, **kw, **extra)
    return model.eval(), AutoTokenizer.from_pretrained(path, **kw)


def artifact_for(intervention: Intervention, options: dict[str, Any], refit: bool = False) -> tuple[Artifact, str]:
    """The artifact ``<name>-hf`` uses for a model loaded with ``options`` (:func:`fairpriv.modelargs.load_options`):
    the on-demand cache's (``"cache"``), or fitted into it (``"fitted"``); the base model is loaded only to fit, and
    freed afterwards."""
    identity = base_identity(options)
    if not refit:
        try:
            return load_artifact(cache_dir(intervention, identity), intervention.name), "cache"
        except ArtifactError:
            pass
    model, tokenizer = load_model(**options)
    try:
        return fit_cached(intervention, model, tokenizer, identity, refit)
    finally:
        del model
        free_memory()


def free_memory() -> None:
    """Give back what a model loaded for a fit or an export held (before an engine claims the device)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
