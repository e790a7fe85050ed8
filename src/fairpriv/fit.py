"""``fairpriv fit``: materialise an intervention once, outside any evaluation, and reuse it in many.

The artifact lands in ``--out`` or, by default, in the same on-demand cache folder that ``<name>-hf`` looks in for
the same base model and config, so a later ``lm_eval --model <name>-hf`` with those arguments reuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairpriv.interventions.artifacts import Artifact
from fairpriv.interventions.base import ConfigError, unknown_key_message

MODEL_KEYS = ("pretrained", "revision", "trust_remote_code")


def fit_from_args(name: str, model_args: str, out: Path | None = None, device: str = "cpu") -> Artifact:
    """Fit intervention ``name`` on the model of ``model_args`` into ``out`` (default: the on-demand cache).
    Every bad input (arguments, destination) is refused before the model is loaded."""
    from fairpriv.interventions import get
    from fairpriv.interventions.artifacts import check_destination
    from fairpriv.interventions.fitting import cache_dir, fit_to
    from fairpriv.models.identity import base_model_identity

    cls = get(name)
    model_kw, config_kw = _split(parse_model_args(model_args, "--model_args"), cls)
    intervention = cls(cls.Config.from_args(config_kw, owner=f"fairpriv fit {name}"))
    base = base_model_identity(model_kw["pretrained"], model_kw.get("revision") or "main")
    dest, owned = (Path(out), False) if out is not None else (cache_dir(intervention, base), True)
    check_destination(dest, name, owned)
    model, tokenizer = load_model(device=device, **model_kw)
    return fit_to(intervention, model, tokenizer, base, dest, owned=owned)


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


def _split(args: dict[str, Any], cls) -> tuple[dict, dict]:
    if "pretrained" not in args:
        raise ConfigError("--model_args needs pretrained=<model id, folder or fairpriv:NAME>")
    accepted = list(MODEL_KEYS) + cls.Config.keys()
    for key in args:
        if key not in accepted:
            raise ConfigError(unknown_key_message(key, accepted, f"fairpriv fit {cls.name}"))
    return {k: v for k, v in args.items() if k in MODEL_KEYS}, {k: v for k, v in args.items() if k not in MODEL_KEYS}


def load_model(pretrained: str, revision: str | None = None, trust_remote_code: bool = False, device: str = "cpu"):
    """Base model (float32) and tokenizer, with ``fairpriv:NAME`` resolved to the embedded asset."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fairpriv.assets import resolve_model

    path = resolve_model(pretrained)
    kw = {"revision": revision or "main", "trust_remote_code": bool(trust_remote_code)}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kw).to(device)
    return model.eval(), AutoTokenizer.from_pretrained(path, **kw)
