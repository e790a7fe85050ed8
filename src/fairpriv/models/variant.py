"""What ``<name>-hf`` and ``<name>-vllm`` share: which artifact a variant uses, the checks on a given one, and the
``fairpriv`` block its results carry (so that ``fairpriv report`` puts runs of one variant on either engine in one
row).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fairpriv.artifacts import Artifact, ArtifactError, canonical_hash, load_artifact
from fairpriv.interventions.base import ConfigError, Intervention
from fairpriv.modelref import same_base_model

log = logging.getLogger(__name__)

OWN_KEYS = frozenset({"artifact", "refit", "allow_base_mismatch"})


def take_alias(intervention_cls: type[Intervention], kwargs: dict[str, Any], artifact: str | None,
               owner: str) -> str | None:
    """``mask=PATH`` (an intervention's own name for ``artifact=``) taken out of ``kwargs``."""
    alias = intervention_cls.artifact_alias
    if alias is None or alias not in kwargs:
        return artifact
    if artifact is not None:
        raise ConfigError(f"{owner} got both artifact= and {alias}=; they mean the same thing: give one")
    return kwargs.pop(alias)


def as_flag(value: Any, key: str, owner: str) -> bool:
    """A true/false model argument (lm-eval passes ``true`` as True; the Python API may pass the string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "false", "0", "no", ""):
        return text in ("true", "1", "yes")
    raise ConfigError(f"{owner}: {key} must be true or false; got {value!r}")


def given_artifact(path: str | Path, intervention: Intervention, given_keys: set[str], base: dict[str, Any],
                   allow_mismatch: bool) -> tuple[Artifact, Intervention, dict[str, Any] | None]:
    """``artifact=PATH``: the artifact, the intervention rebuilt with the artifact's own config, and the record of an
    allowed base-model mismatch (None when the bases agree). Config keys given next to it must agree with it."""
    art = load_artifact(Path(path), intervention.name)
    check_given_config(art, intervention, given_keys)
    cls = type(intervention)
    return art, cls(cls.Config.from_args(art.manifest["config"])), base_mismatch(art, base, allow_mismatch)


def check_given_config(art: Artifact, intervention: Intervention, given_keys: set[str]) -> None:
    mine, theirs = intervention.config.to_dict(), art.manifest["config"]
    clash = sorted(k for k in given_keys if theirs.get(k) != mine[k])
    if clash:
        raise ConfigError(
            f"artifact {art.path} was fitted with {', '.join(f'{k}={theirs.get(k)!r}' for k in clash)}, "
            f"which contradicts the model_args given; drop those keys or fit a new artifact"
        )


def base_mismatch(art: Artifact, mine: dict[str, Any], allowed: bool) -> dict[str, Any] | None:
    """None when ``art`` was fitted on the model being loaded; else the override record if ``allowed``, or an error."""
    theirs = art.manifest.get("base_model")
    if same_base_model(theirs, mine):
        return None
    if not allowed:
        raise ArtifactError(base_mismatch_message(art.path, theirs, mine, intervention_name(art)))
    log.warning("fairpriv: applying artifact %s, fitted on another base model, because allow_base_mismatch=true "
                "(fitted on %s; loaded %s)", art.path, _show(theirs), _show(mine))
    return {"allowed_by": "allow_base_mismatch=true", "artifact_base_model": theirs, "loaded_base_model": mine}


def intervention_name(art: Artifact) -> str:
    return str(art.manifest.get("intervention", "NAME"))


def base_mismatch_message(path: Any, theirs: Any, mine: Any, name: str) -> str:
    return (f"artifact {path} was fitted on the base model {_show(theirs)}, but the model loaded here is "
            f"{_show(mine)}; an artifact applied to another model gives meaningless results. Load the model it was "
            f"fitted on, fit one for this model (`fairpriv fit {name} --model_args pretrained=...`), or add "
            f"allow_base_mismatch=true to the model_args to apply it anyway (the results record the override)")


def _show(identity: Any) -> str:
    return json.dumps(identity, sort_keys=True, default=str)


def results_block(intervention: Intervention, artifact: Artifact | None, source: str | None, base: dict[str, Any],
                  mismatch: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``fairpriv`` block of a variant's results (``get_model_info``), the same for every engine: with the
    intervention's ``summary`` of its facts (the report's text columns) and its name for ``artifact=``, if any."""
    facts = artifact.manifest.get("facts", {}) if artifact else {}
    block = {
        "intervention": intervention.name,
        "intervention_version": intervention.version,
        "config": intervention.config.to_dict(),
        "artifact_hash": artifact.hash if artifact else None,
        "artifact_path": str(artifact.path) if artifact else None,
        "artifact_source": source,
        "artifact_alias": intervention.artifact_alias,
        "facts": facts,
        "summary": summary(intervention, facts),
        "base_model": base,
    }
    if mismatch is not None:
        block["base_model_mismatch"] = mismatch
    return block


def summary(intervention: Intervention, facts: dict[str, Any]) -> dict[str, str] | None:
    """The intervention's summary of ``facts`` as text; None, with a warning, when it fails (the evaluation is kept:
    ``fairpriv report`` then asks the installed intervention again)."""
    try:
        return {str(k): str(v) for k, v in intervention.summary(facts).items()}
    except Exception as exc:  # a plugin's bug must not lose an evaluation that has just finished
        log.warning("fairpriv: %s.summary() failed (%r); the results carry no summary", intervention.name, exc)
        return None


def cache_salt(intervention: Intervention, artifact: Artifact | None, base: dict[str, Any]) -> str:
    """What tells a variant's cached answers apart from its base model's (see :mod:`fairpriv.models.cache`)."""
    parts = [intervention.name, intervention.version, intervention.config.to_dict(),
             artifact.hash if artifact else None]
    return canonical_hash(parts + [base])[:16]


def follow_lm_eval_logging() -> None:
    """Show fairpriv's messages (fitted or cached artifact, counts) where lm-eval shows its own, at its level.

    lm-eval's CLI gives its ``lm_eval`` logger a handler and stops propagation; the ``fairpriv`` logger gets the same
    handlers unless someone configured it already."""
    ours, theirs = logging.getLogger("fairpriv"), logging.getLogger("lm_eval")
    if ours.handlers or not theirs.handlers:
        return
    for handler in theirs.handlers:
        ours.addHandler(handler)
    ours.setLevel(theirs.getEffectiveLevel())
    ours.propagate = False


def class_title(name: str) -> str:
    """``zero-rows`` -> ``ZeroRows`` (the start of a generated class name)."""
    return "".join(part.title() for part in name.replace("_", "-").split("-"))


