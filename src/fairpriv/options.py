"""Checked option values: the error every bad ``--model_args`` key or value raises, the "unknown key" message and
the coercion of lm-eval's strings and scalars into a declared type (int, float, bool, str, Literal, Optional).

Used by intervention configs, by the model-argument splitter and by the commands that parse options themselves.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal

from fairpriv.names import did_you_mean


class ConfigError(ValueError):
    """A model argument that an intervention cannot accept; the message names the key and the fix."""


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
