"""Fit an intervention once and reuse it: the on-demand artifact cache used by every ``X-hf`` model.

The cache folder of a fit is named by a content hash of everything that determines it (intervention name and
version, config, base-model identity, library versions), under ``$FAIRPRIV_HOME/artifacts/<name>/``. A second
evaluation with the same inputs loads the artifact instead of fitting again; ``refit=true`` forces a new fit.
Processes that ask for the same folder at once fit it once, under the folder's lock (:mod:`.fitlock`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fairpriv.artifacts import Artifact, ArtifactError, build_artifact, cache_key, load_artifact
from fairpriv.interventions.base import Intervention
from fairpriv.interventions.fitlock import (FITTED_HERE, artifact_stamp, fit_lock, peer_since_ns, refit_done,
                                           remember_fit)
from fairpriv.paths import home

log = logging.getLogger(__name__)


def artifacts_home() -> Path:

    return home() / "artifacts"


def identity(intervention: Intervention, base_model: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records about the fit's inputs, with the dtype the model was fitted in."""
    return {
        "intervention": intervention.name,
        "intervention_version": intervention.version,
        "config": intervention.config.to_dict(),
        "base_model": base_model,
        "dtype": base_model.get("dtype", "float32"),
    }


def cache_dir(intervention: Intervention, base_model: dict[str, Any]) -> Path:
    """The on-demand cache folder of these inputs. ``base_model`` (from
    :func:`fairpriv.modelref.base_model_identity`) carries the dtype of the fit when it is not float32, so a
    bfloat16 fit gets its own folder while float32 folders keep the names they had before dtypes were told apart."""
    key = cache_key(intervention.name, intervention.version, intervention.config.to_dict(), base_model)
    return artifacts_home() / intervention.name / key[:32]


def fit_to(intervention: Intervention, model: Any, tokenizer: Any, base_model: dict, out: Path,
           owned: bool = False) -> Artifact:
    """Fit into ``out`` (replaced atomically when complete). An existing ``out`` must be empty or an artifact of
    the same intervention, unless ``owned`` (the on-demand cache folder, fitted under its inter-process lock)."""
    if not owned:
        return _fit(intervention, model, tokenizer, base_model, Path(out), owned=False)
    with fit_lock(Path(out)):
        return _fit(intervention, model, tokenizer, base_model, Path(out), owned=True)


def _fit(intervention: Intervention, model: Any, tokenizer: Any, base_model: dict, out: Path, owned: bool) -> Artifact:
    log.info("fairpriv: fitting intervention '%s' into %s", intervention.name, out)
    fit = lambda tmp: intervention.fit(model, tokenizer, tmp)  # noqa: E731
    artifact = build_artifact(out, fit, identity(intervention, base_model), owned=owned)
    remember_fit(out)
    return artifact


def fit_cached(
    intervention: Intervention, model: Any, tokenizer: Any, base_model: dict, refit: bool = False
) -> tuple[Artifact, str]:
    """Load the cached artifact for these inputs, or fit it. Returns (artifact, "cache" | "fitted").

    Processes asking for the same folder at once (data parallelism) fit it once: the first takes the folder's lock
    and fits, the others wait and load its artifact; a refit asked for by all of them is done once too."""
    dest = cache_dir(intervention, base_model)
    if not refit and (cached := _load_cached(dest, intervention.name, quiet=True)) is not None:
        return cached, "cache"  # the common case needs no lock
    seen = artifact_stamp(dest)
    with fit_lock(dest):
        if not refit or refit_done(seen, artifact_stamp(dest), peer_since_ns(), FITTED_HERE):
            if (cached := _load_cached(dest, intervention.name)) is not None:
                return cached, "cache"
        return _fit(intervention, model, tokenizer, base_model, dest, owned=True), "fitted"


def _load_cached(dest: Path, name: str, quiet: bool = False) -> Artifact | None:
    """The artifact in cache folder ``dest``; ``None`` when absent or unusable (said unless ``quiet``)."""
    if not dest.exists():
        return None
    try:
        return load_artifact(dest, name)
    except ArtifactError as exc:
        if not quiet:
            log.warning("fairpriv: cached artifact unusable (%s); fitting again", exc)
        return None
