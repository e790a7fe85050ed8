"""``--model_args`` split into groups of keys (:func:`split_args`, the one splitter of ``<name>-hf``,
``<name>-vllm``, ``fairpriv fit``, ``fairpriv export`` and ``fairpriv analyze``), and the model keys of the commands
that load a model themselves (``fit``, ``export``, ``analyze``), with lm-eval's names and meanings, split from the
intervention's config keys and checked before anything is loaded.

* ``pretrained``, ``revision``, ``trust_remote_code``: as in lm-eval;
* ``dtype``: ``float32`` (these commands' default), ``bfloat16``, ``float16`` or ``auto`` (the checkpoint's
  ``config.json`` dtype, float32 when it names none), resolved before loading so the artifact key is known;
* ``device`` (``cpu``, ``cuda``, ``cuda:1``...), or ``device_map`` (handed to ``from_pretrained``), or
  ``parallelize=true`` (HFLM's meaning: ``device_map="auto"``); a ``device`` that contradicts them is an error,
  as is a ``device=`` that differs from the command's ``--device`` flag;
* ``attn_implementation``: handed to ``from_pretrained``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fairpriv.options import ConfigError, coerce, unknown_key_message

MODEL_KEYS = ("pretrained", "revision", "trust_remote_code", "dtype", "device", "device_map", "parallelize",
              "attn_implementation")
DTYPES = ("float32", "bfloat16", "float16", "auto")
DEFAULT_DTYPE = "float32"
DEFAULT_DEVICE = "cpu"
NEEDS_PRETRAINED = "--model_args needs pretrained=<model id, folder or fairpriv:NAME>"


def split_args(args: Mapping[str, Any], groups: Sequence[Iterable[str]], owner: str,
               also_accepted: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``args`` as one dict per group of keys (a key goes to every group that lists it). A key that no group lists
    is a ConfigError naming it, a close match and every accepted key; ``also_accepted`` are keys the caller took
    out before (``artifact=``, ``refit=``...), listed in that message too. The one splitter of ``--model_args``:
    ``<name>-hf``, ``<name>-vllm``, ``fairpriv fit``, ``fairpriv export`` and ``fairpriv analyze`` all use it."""
    sets = [set(keys) for keys in groups]
    listed = set().union(*sets)
    for key in args:
        if key not in listed:
            raise ConfigError(unknown_key_message(key, sorted(listed | set(also_accepted)), owner))
    return [{k: v for k, v in args.items() if k in keys} for keys in sets]


def split_model_args(args: dict[str, Any], config_keys: Iterable[str], owner: str,
                     model_keys: Iterable[str] = MODEL_KEYS,
                     needs_pretrained: str = NEEDS_PRETRAINED) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model keys, config keys) of parsed ``--model_args`` for a command that loads the model itself; a missing
    ``pretrained`` (when it is one of ``model_keys``) is a ConfigError with ``needs_pretrained``."""
    model_keys = tuple(model_keys)
    if "pretrained" in model_keys and "pretrained" not in args:
        raise ConfigError(needs_pretrained)
    model, config = split_args(args, [model_keys, [k for k in config_keys if k not in model_keys]], owner)
    return model, config


def load_options(model_kw: dict[str, Any], flag_device: str | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`fairpriv.fit.load_model` from the model keys and the ``--device`` flag:
    checked, with defaults (float32, cpu) filled in and ``parallelize`` turned into its ``device_map``."""
    out = {k: model_kw[k] for k in ("pretrained", "revision", "attn_implementation") if model_kw.get(k) is not None}
    out["trust_remote_code"] = coerce(model_kw.get("trust_remote_code", False), bool, "trust_remote_code")
    out["dtype"] = check_dtype(model_kw.get("dtype", DEFAULT_DTYPE))
    device = given_device(model_kw.get("device"), flag_device)
    device_map = placement(model_kw.get("device_map"), model_kw.get("parallelize", False), device)
    out.update({"device_map": device_map} if device_map is not None else {"device": device or DEFAULT_DEVICE})
    return out


def check_dtype(dtype: Any) -> str:
    if str(dtype) not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return str(dtype)


def given_device(key: Any, flag: str | None) -> str | None:
    """The device asked for with ``device=`` or ``--device`` (None: neither); both must name the same one."""
    if key is not None and flag is not None and str(key) != str(flag):
        raise ConfigError(f"--device {flag} and device={key} in --model_args disagree; give the device once "
                          "(either is fine)")
    return str(key) if key is not None else flag


def placement(device_map: Any, parallelize: Any, device: str | None) -> str | None:
    """The ``device_map`` to load with (None: load onto ``device``); ``parallelize=true`` means ``"auto"``, as in
    lm-eval's HFLM. A device next to a different device map is refused."""
    parallel = coerce(parallelize, bool, "parallelize")
    if parallel and device_map is None:
        device_map = "auto"
    if device_map is not None and device is not None and str(device_map) != device:
        given = "parallelize=true" if parallel else f"device_map={device_map}"
        raise ConfigError(f"device {device} contradicts {given}: give a device to load the whole model there, or "
                          "device_map/parallelize to spread it over the devices, not both")
    return None if device_map is None else str(device_map)
