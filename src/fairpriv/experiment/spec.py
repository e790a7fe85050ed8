"""Experiment specs for ``fairpriv run``: base models x variants x tasks, read from YAML and expanded into cells.

A spec names base models, the tasks (lm-eval task or group names) and the variants; a variant is the plain model
or an intervention with a config, optionally swept over a few values::

    name: demo
    models: [fairpriv:smollm2-135m-instruct-q4_1]
    tasks: [fairness_awareness_mc, privacy_awareness_mc, general_capability]
    settings: {batch_size: 16, device: cpu}          # also: limit, seed, chat_template, metadata, include_path
    variants:
      base: {}                                       # the plain model (added when no variant is plain)
      dean:
        intervention: dean
        sweep: {p: [1.0e-4, 3.0e-4], q: [1.0e-4, 3.0e-4]}   # zipped: one point per position, axis = first key
      dp:
        intervention: dp
        config: {n_samples: 256}
        sweep: {epsilon: [1, 8]}
        tasks: [privacy_awareness_mc]                # optional: replaces the spec's task list

A cell is one (model, variant point, task); each has a fingerprint of everything that determines its result, so a
re-run skips finished cells and a changed spec never silently reuses stale ones. Nothing here touches a model.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPEC_KEYS = ("name", "description", "models", "tasks", "settings", "variants")
VARIANT_KEYS = ("intervention", "config", "sweep", "tasks")
SETTING_DEFAULTS: dict[str, Any] = {
    "batch_size": 16, "device": "cpu", "limit": None, "seed": None, "chat_template": False, "metadata": {},
    "include_path": None,
}
BASE = "base"


class SpecError(ValueError):
    """A malformed experiment spec; the message names the key and the fix."""


@dataclass(frozen=True, eq=False)  # identity: configs are dicts
class Variant:
    """One point of a variant: ``intervention`` None is the plain model."""

    name: str  # unique within the spec, e.g. "dean" or "dean@p=0.0001,q=0.0001"
    family: str  # the variant's key in the spec, e.g. "dean"
    intervention: str | None
    config: dict[str, Any]
    tasks: tuple[str, ...]
    sweep: tuple[str, Any] | None = None

    @property
    def lm_eval_model(self) -> str:
        return "hf" if self.intervention is None else f"{self.intervention}-hf"


@dataclass(frozen=True, eq=False)
class Cell:
    model: str
    variant: Variant
    task: str
    settings: dict[str, Any]

    @property
    def model_args(self) -> dict[str, Any]:
        return {"pretrained": self.model, **self.variant.config}

    @property
    def fingerprint(self) -> str:
        changed = {k: v for k, v in self.settings.items() if v != SETTING_DEFAULTS.get(k)}  # new settings: no churn
        return fingerprint({"model": self.model, "intervention": self.variant.intervention, "task": self.task,
                            "config": self.variant.config, "settings": changed})

    @property
    def folder(self) -> Path:
        """Where the cell's results go, relative to the experiment's output folder."""
        return Path(slug(self.model)) / slug(self.variant.name) / slug(self.task)


@dataclass(frozen=True)
class Experiment:
    name: str
    models: tuple[str, ...]
    variants: tuple[Variant, ...]
    settings: dict[str, Any]
    description: str = ""
    source: str = ""  # the spec file
    cells: tuple[Cell, ...] = field(default=(), repr=False)


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(text: str) -> str:
    """A folder-safe name: ``fairpriv:smollm2`` -> ``fairpriv_smollm2``, ``dean@p=1e-4`` kept readable."""
    return re.sub(r"[^A-Za-z0-9._=@,+-]+", "_", text).strip("_") or "_"


def load(path: str | Path, limit: float | None = None) -> Experiment:
    """Read and validate a spec file; ``limit`` overrides ``settings.limit`` (e.g. a quick wiring check)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"experiment spec {path} does not exist; see experiments/ for examples")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"experiment spec {path} is not valid YAML: {exc}") from exc
    return parse(raw, source=str(path), limit=limit)


def parse(raw: Any, source: str = "<spec>", limit: float | None = None) -> Experiment:
    spec = _mapping(raw, source, SPEC_KEYS)
    tasks = _names(spec.get("tasks"), f"{source}: tasks")
    settings = _settings(spec.get("settings"), source, limit)
    variants = _variants(spec.get("variants"), tasks, source)
    models = _names(spec.get("models"), f"{source}: models")
    cells = tuple(Cell(m, v, t, settings) for m in models for v in variants for t in v.tasks)
    name = str(spec.get("name") or Path(source).stem)
    return Experiment(name, models, variants, settings, str(spec.get("description") or ""), source, cells)


def _mapping(raw: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping with keys {', '.join(allowed)}, got {type(raw).__name__}")
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
    return raw


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{where}: expected a non-empty list of names")
    if len(set(value)) != len(value):
        raise SpecError(f"{where}: {value} lists a name twice")
    return tuple(value)


def _settings(raw: Any, source: str, limit: float | None) -> dict[str, Any]:
    settings = {**SETTING_DEFAULTS, **_mapping(raw, f"{source}: settings", tuple(SETTING_DEFAULTS))}
    if limit is not None:
        settings["limit"] = limit
    if settings["limit"] is not None and not (isinstance(settings["limit"], (int, float)) and settings["limit"] > 0):
        raise SpecError(f"{source}: settings.limit must be a positive number (items per task, or a fraction < 1)")
    if not isinstance(settings["batch_size"], int) or settings["batch_size"] < 1:
        raise SpecError(f"{source}: settings.batch_size must be a positive integer (`auto` picks 64 on CPU)")
    if not isinstance(settings["metadata"], dict):
        raise SpecError(f"{source}: settings.metadata must be a mapping (task metadata, e.g. {{judge: rule}})")
    settings["include_path"] = _include_path(settings["include_path"], source)
    return settings


def _include_path(value: Any, source: str) -> str | None:
    """A folder of the user's own task YAMLs, relative to the spec file (not to the working directory)."""
    if value is None:
        return None
    folder = Path(source).parent / str(value)
    if not folder.is_dir():
        raise SpecError(f"{source}: settings.include_path {value!r} is not a folder (looked at {folder})")
    return str(folder.resolve())


def _variants(raw: Any, tasks: tuple[str, ...], source: str) -> tuple[Variant, ...]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: variants must be a mapping from a variant name to its settings")
    variants = [v for name, body in raw.items() for v in _expand(str(name), body, tasks, source)]
    if not any(v.intervention is None for v in variants):
        variants.insert(0, Variant(BASE, BASE, None, {}, tasks))
    return tuple(variants)


def _expand(name: str, body: Any, tasks: tuple[str, ...], source: str) -> list[Variant]:
    where = f"{source}: variants.{name}"
    body = _mapping(body, where, VARIANT_KEYS)
    intervention, config = body.get("intervention"), dict(body.get("config") or {})
    own_tasks = _names(body["tasks"], f"{where}.tasks") if "tasks" in body else tasks
    if intervention is None and (config or body.get("sweep")):
        raise SpecError(f"{where}: config and sweep need an intervention (e.g. intervention: dean)")
    points = _sweep_points(body.get("sweep"), config, where)
    if points is None:
        return [Variant(name, name, intervention, _checked(intervention, config, where), own_tasks)]
    return [Variant(_point_name(name, extra), name, intervention, _checked(intervention, {**config, **extra}, where),
                    own_tasks, next(iter(extra.items()))) for extra in points]


def _sweep_points(sweep: Any, config: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    if sweep is None:
        return None
    if not isinstance(sweep, dict) or not sweep or not all(isinstance(v, list) and v for v in sweep.values()):
        raise SpecError(f"{where}.sweep: expected a mapping from config keys to non-empty lists of values")
    lengths = {len(v) for v in sweep.values()}
    if len(lengths) != 1:
        raise SpecError(f"{where}.sweep: the lists are zipped, so they need equal lengths (got {sorted(lengths)})")
    clash = [k for k in sweep if k in config]
    if clash:
        raise SpecError(f"{where}: {clash[0]!r} is both in config and sweep; keep it in one of them")
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in zip(*sweep.values())]


def _point_name(name: str, extra: dict[str, Any]) -> str:
    return f"{name}@" + ",".join(f"{k}={v}" for k, v in extra.items())


def _checked(intervention: str | None, config: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the config against the intervention's own Config (unknown keys, bad values) before any run."""
    if intervention is None:
        return config
    from fairpriv.interventions import UnknownInterventionError, get
    from fairpriv.interventions.base import ConfigError

    try:
        get(intervention).Config.from_args(dict(config), owner=f"{where}.config")
    except (UnknownInterventionError, ConfigError) as exc:
        raise SpecError(f"{where}: {exc}") from exc
    return config
