"""The one extension point of fairpriv: an intervention that turns a loaded Hugging Face model into a changed one.

An intervention has

* a frozen config dataclass (a subclass of :class:`InterventionConfig`) whose field names are exactly the
  ``--model_args`` keys it accepts; values arrive as strings or lm-eval's parsed scalars and are coerced and
  validated here, so a typo or a wrong type fails with a message that names the key and the fix;
* an optional, expensive ``fit`` phase that writes an artifact folder (safetensors files; fairpriv adds the
  ``manifest.json``) and returns the facts worth recording (e.g. a DP epsilon);
* a cheap, deterministic ``apply`` phase that changes the model using that artifact;
* a ``summary`` of those facts for the leaderboard (text columns such as a DP epsilon), recorded in the results.

Built-ins are listed in :mod:`fairpriv.interventions.registry`; third parties expose a subclass through the
entry-point group ``fairpriv.interventions`` and it appears in lm-eval as ``<name>-hf``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from fairpriv.names import did_you_mean


class ConfigError(ValueError):
    """A model argument that an intervention cannot accept; the message names the key and the fix."""


@dataclasses.dataclass(frozen=True)
class InterventionConfig:
    """Base class for intervention configs. Subclasses add fields; ``__post_init__`` may add checks."""

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_args(cls, args: dict[str, Any], *, owner: str = "intervention") -> "InterventionConfig":
        """Build a config from ``--model_args`` values, coercing each to its declared type."""
        unknown = sorted(set(args) - set(cls.keys()))
        if unknown:
            raise ConfigError(unknown_key_message(unknown[0], cls.keys(), owner))
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(v, hints[k], k) for k, v in args.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def unknown_key_message(key: str, accepted: list[str], owner: str) -> str:
    """Message for an unknown argument: the key, a close match if there is one, and every accepted key."""
    hint = did_you_mean(key, accepted)
    return f"{owner} does not accept the argument '{key}'.{hint} Accepted: {', '.join(sorted(accepted))}."


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert ``value`` to the type ``hint`` (int, float, bool, str, Literal, Optional of those)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        return coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is Literal:
        if str(value) not in [str(a) for a in args]:
            raise ConfigError(f"'{key}' must be one of {', '.join(map(str, args))}; got {value!r}.")
        return next(a for a in args if str(a) == str(value))
    return _coerce_scalar(value, hint, key)


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        raise ConfigError(f"'{key}' must be true or false; got {value!r}.")
    if hint in (int, float):
        return _coerce_number(value, hint, key)
    return value if hint is Any else hint(value)


def _coerce_number(value: Any, hint: type, key: str) -> int | float:
    """An int or float field: numbers and numeric strings, finite, never a boolean (``True`` is an int to Python)."""
    kind, example = hint.__name__, "8" if hint is int else "8 or 1e-5"
    if isinstance(value, bool):
        raise ConfigError(f"'{key}' must be a number ({kind}), not a boolean; got {value!r} (lm-eval and YAML read a "
                          f"bare true/false as a boolean). Give a number instead, e.g. {example}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"'{key}' must be a number ({kind}); got {value!r}. Give a plain number, e.g. "
                          f"{example}.") from None
    if not math.isfinite(number):
        raise ConfigError(f"'{key}' must be a finite number ({kind}); got {value!r}. nan and inf are not accepted: "
                          f"give a finite number, e.g. {example}.")
    return number if hint is float else _whole(value, number, key)


def _whole(value: Any, number: float, key: str) -> int:
    """An int field: exact for integer strings and ints (no float rounding), else a float that is whole."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("+-").isdigit()):
        return int(value)
    if not number.is_integer():
        raise ConfigError(f"'{key}' must be a whole number (int); got {value!r}. Round it, e.g. {round(number)}.")
    return int(number)


class Intervention:
    """Base class: subclasses set ``name``, ``Config`` and implement ``apply`` (and ``fit`` if they need one).

    ``version`` is part of the artifact cache key: bump it whenever ``fit`` or ``apply`` change meaning.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[InterventionConfig]] = InterventionConfig
    version: ClassVar[str] = "1"
    requires_fit: ClassVar[bool] = True
    description: ClassVar[str] = ""
    artifact_alias: ClassVar[str | None] = None  # another model_args name for ``artifact=`` (DEAN: ``mask=``)

    @classmethod
    def summary(cls, facts: dict[str, Any]) -> dict[str, str]:
        """The leaderboard's text columns for a variant whose artifact recorded ``facts`` (column key -> text).

        Keys the report knows (``epsilon``, ``delta``, ``accountant``, ``zeroed``, ``data``) fill those columns; any
        other key gets a column headed by the key. A classmethod, so the report can call it without a config.
        """
        return {}

    def __init__(self, config: InterventionConfig) -> None:
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    def fit(self, model: Any, tokenizer: Any, out_dir: Path) -> dict[str, Any]:
        """Write the artifact's files into ``out_dir``; return facts to record in the manifest."""
        raise NotImplementedError(f"intervention '{self.name}' has no fit phase")

    def apply(self, model: Any, artifact: Any) -> Any:
        """Return the changed model (may change it in place). ``artifact`` is an Artifact or None."""
        raise NotImplementedError
