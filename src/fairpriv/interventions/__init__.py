"""Interventions: the extension point (base), where they are found (registry), artifacts and fitting."""

from fairpriv.artifacts import Artifact, ArtifactError, load_artifact
from fairpriv.interventions.base import ConfigError, Intervention, InterventionConfig
from fairpriv.interventions.registry import (
    ENTRY_POINT_GROUP,
    InterventionLoadError,
    UnknownInterventionError,
    get,
    names,
    register,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Artifact",
    "ArtifactError",
    "ConfigError",
    "Intervention",
    "InterventionConfig",
    "InterventionLoadError",
    "UnknownInterventionError",
    "get",
    "load_artifact",
    "names",
    "register",
]
