"""Fit an intervention once and reuse it: the on-demand artifact cache used by every ``X-hf`` model.

The cache folder of a fit is named by a content hash of everything that determines it (intervention name and
version, config, base-model identity, library versions), under ``$FAIRPRIV_HOME/artifacts/<name>/``. A second
evaluation with the same inputs loads the artifact instead of fitting again; ``refit=true`` forces a new fit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fairpriv.interventions.artifacts import Artifact, ArtifactError, build_artifact, cache_key, load_artifact
from fairpriv.interventions.base import Intervention

log = logging.getLogger(__name__)


def artifacts_home() -> Path:
    from fairpriv.assets import home

    return home() / "artifacts"


def identity(intervention: Intervention, base_model: dict[str, Any]) -> dict[str, Any]:
    return {
        "intervention": intervention.name,
        "intervention_version": intervention.version,
        "config": intervention.config.to_dict(),
        "base_model": base_model,
    }


def cache_dir(intervention: Intervention, base_model: dict[str, Any]) -> Path:
    key = cache_key(intervention.name, intervention.version, intervention.config.to_dict(), base_model)
    return artifacts_home() / intervention.name / key[:32]


def fit_to(intervention: Intervention, model: Any, tokenizer: Any, base_model: dict, out: Path,
           owned: bool = False) -> Artifact:
    """Fit into ``out`` (replaced atomically when complete). An existing ``out`` must be empty or an artifact of
    the same intervention, unless ``owned`` (the on-demand cache folder)."""
    log.info("fairpriv: fitting intervention '%s' into %s", intervention.name, out)
    fit = lambda tmp: intervention.fit(model, tokenizer, tmp)  # noqa: E731
    return build_artifact(Path(out), fit, identity(intervention, base_model), owned=owned)


def fit_cached(
    intervention: Intervention, model: Any, tokenizer: Any, base_model: dict, refit: bool = False
) -> tuple[Artifact, str]:
    """Load the cached artifact for these inputs, or fit it. Returns (artifact, "cache" | "fitted")."""
    dest = cache_dir(intervention, base_model)
    if dest.exists() and not refit:
        try:
            return load_artifact(dest, intervention.name), "cache"
        except ArtifactError as exc:
            log.warning("fairpriv: cached artifact unusable (%s); fitting again", exc)
    return fit_to(intervention, model, tokenizer, base_model, dest, owned=True), "fitted"
