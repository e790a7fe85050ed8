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
import typing
from pathlib import Path
from typing import Any, ClassVar

from fairpriv.options import ConfigError, coerce, unknown_key_message

__all__ = ["ConfigError", "Intervention", "InterventionConfig", "coerce", "unknown_key_message"]


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
