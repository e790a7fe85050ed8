"""Experiment specs for ``fairpriv run``: base models x variants x tasks, read from YAML and expanded into cells.

A spec names base models, the tasks (lm-eval task or group names) and the variants; a variant is the plain model
or an intervention with a config, optionally swept over a few values::

    name: demo
    models: [fairpriv:smollm2-135m-instruct-q4_1]
    tasks: [fairness_awareness_mc, privacy_awareness_mc, general_capability]
    settings: {batch_size: 16, device: cpu}          # also: limit, seed, chat_template, metadata, include_path,
                                                     # backend (hf | vllm), loglikelihood_backend (hf |
                                                     # vllm), model_args (engine and HF keys)
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
        backend: vllm                                # optional: this variant's engine (default: settings.backend)

Variant names are folder names (letters, digits and ``. _ - + = ,``), and every variant, sweep point, model and
task gets its own results folder; a key given twice in one YAML mapping is an error, as is a boolean where a number
or text is expected (YAML reads ``yes``/``no``/``on``/``off`` as booleans). All of this is checked on loading.

A cell runs on its variant's backend (``hf``, the default, or ``vllm``); on ``vllm``, a task or group of fairpriv's
whose requests are all log-likelihoods (multiple choice, perplexity, next-token divergences: see
:func:`fairpriv.tasks.likelihood_only`) runs on ``settings.loglikelihood_backend`` instead (default ``hf``, the
faster engine for them on a CPU; ``vllm`` keeps them on vLLM).

A cell is one (model, variant point, task); each has a fingerprint of everything that determines its result, so a
re-run skips finished cells and a changed spec never silently reuses stale ones. Nothing here touches a model.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fairpriv.files import DataError, FileKind, read_text
from fairpriv.interventions import UnknownInterventionError, get
from fairpriv.interventions.base import ConfigError
from fairpriv.tasks import likelihood_only

SPEC_KEYS = ("name", "description", "models", "tasks", "settings", "variants")
VARIANT_KEYS = ("intervention", "config", "sweep", "tasks", "backend")
SETTING_DEFAULTS: dict[str, Any] = {
    "batch_size": 16, "device": "cpu", "limit": None, "seed": None, "chat_template": False, "metadata": {},
    "include_path": None, "backend": "hf", "loglikelihood_backend": "hf", "model_args": {},
}
ROUTING = ("backend", "loglikelihood_backend")  # where a cell runs: in its fingerprint as ``engine`` (vLLM only)
BACKENDS = ("hf", "vllm")
BASE = "base"
SPEC_FILE_NEEDS = "a YAML mapping with models, tasks and variants (see experiments/demo.yaml)"
NAME_CHARS = "letters, digits and . _ - + = , only"
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=+-]*")
MAX_FOLDER_BYTES = 200  # a folder name, with room for the ".partial" suffix under the usual 255-byte limit
BOOLEAN_NOTE = "YAML reads true/false/yes/no/on/off as booleans"


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
    backend: str | None = None  # None: the spec's settings.backend

    def lm_eval_model(self, engine: str = "hf") -> str:
        """lm-eval's model name on ``engine``: ``hf``/``vllm`` for the plain model, ``<name>-<engine>`` otherwise."""
        return engine if self.intervention is None else f"{self.intervention}-{engine}"


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
    def engine(self) -> str:
        """Where the cell runs: the variant's backend, but a log-likelihood-only task of a vLLM variant on
        ``settings.loglikelihood_backend``."""
        wanted = self.variant.backend or self.settings.get("backend", "hf")
        if wanted == "vllm" and likelihood_only(self.task):
            return self.settings.get("loglikelihood_backend", "hf")
        return wanted

    @property
    def lm_eval_model(self) -> str:
        return self.variant.lm_eval_model(self.engine)

    @property
    def fingerprint(self) -> str:
        changed = {k: v for k, v in self.settings.items() if v != SETTING_DEFAULTS.get(k) and k not in ROUTING}
        engine = {"engine": self.engine} if self.engine != "hf" else {}  # HF cells keep the fingerprints they had
        return fingerprint({"model": self.model, "intervention": self.variant.intervention, "task": self.task,
                            "config": self.variant.config, "settings": changed, **engine})

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
    out = re.sub(r"[^A-Za-z0-9._=@,+-]+", "_", text).strip("_")
    return "_" if out in ("", ".", "..") else out


class DuplicateKeyError(Exception):
    """A mapping of the spec file gives one key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader (Python tags stay refused) that refuses a key given twice in one mapping: PyYAML would
    keep the last value silently, so a variant named twice would lose the first one."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(f"line {line}: the key {key!r} is given twice in one mapping (first on line "
                                        f"{seen[key]}) and YAML would keep only the last; give each key (each "
                                        "variant) its own name, or delete the repeat")
            seen[key] = line
        return super().construct_mapping(node, deep)


def load(path: str | Path, limit: float | None = None) -> Experiment:
    """Read and validate a spec file; ``limit`` overrides ``settings.limit`` (e.g. a quick wiring check)."""
    path = Path(path)
    try:
        text = read_text(path, FileKind("experiment spec", SPEC_FILE_NEEDS, "see experiments/ for examples"))
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except DataError as exc:
        raise SpecError(str(exc)) from None
    except DuplicateKeyError as exc:
        raise SpecError(f"experiment spec {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"experiment spec {path} is not valid YAML: {exc}") from exc
    return parse(raw, source=str(path), limit=limit)


def parse(raw: Any, source: str = "<spec>", limit: float | None = None) -> Experiment:
    spec = _mapping(raw, source, SPEC_KEYS)
    tasks = _names(spec.get("tasks"), f"{source}: tasks")
    _distinct_folders(tasks, f"{source}: tasks", "tasks")
    settings = _settings(spec.get("settings"), source, limit)
    variants = _variants(spec.get("variants"), tasks, source)
    models = _names(spec.get("models"), f"{source}: models")
    _distinct_folders(models, f"{source}: models", "models")
    cells = tuple(Cell(m, v, t, settings) for m in models for v in variants for t in v.tasks)
    name = _experiment_name(str(spec.get("name") or Path(source).stem), source)
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
    for key, ok, need in SETTING_CHECKS:
        if not ok(settings[key]):
            note = f", a boolean ({BOOLEAN_NOTE})" if isinstance(settings[key], bool) else ""
            raise SpecError(f"{source}: settings.{key} must be {need}; got {settings[key]!r}{note}")
    settings["include_path"] = _include_path(settings["include_path"], source)
    return settings


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_limit(value: Any) -> bool:
    return value is None or _is_number(value) and value > 0 and (value < 1 or float(value).is_integer())


SETTING_CHECKS = (
    ("limit", _is_limit, "a positive number (items per task, a whole number, or a fraction < 1)"),
    ("batch_size", lambda v: v == "auto" or _is_int(v) and v >= 1,
     "a positive integer or auto (HF: lm-eval's search, which picks 64 on CPU; vLLM: its own scheduling)"),
    ("backend", lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    ("loglikelihood_backend", lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    ("model_args", lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
     "a mapping of model arguments (e.g. {dtype: bfloat16, tensor_parallel_size: 2})"),
    ("seed", lambda v: v is None or _is_int(v) and v >= 0, "a whole number >= 0 (leave it out for lm-eval's seeds)"),
    ("chat_template", lambda v: isinstance(v, (bool, str)), "true, false or a chat template name"),
    ("device", lambda v: isinstance(v, str) and bool(v), "a device name such as cpu or cuda"),
    ("metadata", lambda v: isinstance(v, dict), "a mapping (task metadata, e.g. {judge: rule})"),
)


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
    variants = [v for name, body in raw.items() for v in _expand(_variant_name(name, source), body, tasks, source)]
    if not any(v.intervention is None for v in variants):
        if any(v.name == BASE for v in variants):
            raise SpecError(f"{source}: variants.{BASE} has an intervention, but {BASE!r} names the plain model that "
                            "is added when no variant is plain; rename it (e.g. after its intervention) or add a "
                            "plain variant such as 'plain: {}'")
        variants.insert(0, Variant(BASE, BASE, None, {}, tasks))
    _distinct_folders([v.name for v in variants], f"{source}: variants", "variants")
    return tuple(variants)


def _variant_name(name: Any, source: str) -> str:
    """A variant name is its results folder's name: refuse names that are not plain, safe folder names."""
    if not isinstance(name, str):
        raise SpecError(f"{source}: variant name {name!r} is a {type(name).__name__}, not text (YAML reads yes, no, "
                        "on, off, true, false, null and numbers as values); put the name in quotes in the spec")
    problem = _name_problem(name)
    if problem:
        suggestion = re.sub(r"[^A-Za-z0-9_,=+-]+", "-", name).strip("-_")
        example = f", e.g. {suggestion!r}" if suggestion else ""
        raise SpecError(f"{source}: variant name {name!r} {problem}; name it with {NAME_CHARS}{example}")
    return name


def _name_problem(name: str) -> str:
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "would point outside its results folder"
    if name.startswith("."):
        return "would be a hidden folder"
    if "@" in name:
        return "holds '@', which marks the points of a sweep"
    if not SAFE_NAME.fullmatch(name):
        unsafe = "".join(sorted({c for c in name if not SAFE_NAME.fullmatch("a" + c)}))
        return f"holds characters that are unsafe in a folder name ({unsafe!r})"
    return "is too long for a folder name" if len(name.encode()) > MAX_FOLDER_BYTES else ""


def _distinct_folders(names: Iterable[str], where: str, what: str) -> None:
    """Every name gets its own results folder (compared ignoring case, for case-insensitive file systems)."""
    seen: dict[str, str] = {}
    for name in names:
        folder = _folder_name(name, where)
        if folder.casefold() in seen:
            first = seen[folder.casefold()]
            fix = ("a sweep gives one value twice (1e-4 and 0.0001 are one value); drop the repeat" if first == name
                   else "give them names that differ in more than case or punctuation")
            raise SpecError(f"{where}: {what} {first!r} and {name!r} would write to the same results folder "
                            f"{folder!r}: {fix}")
        seen[folder.casefold()] = name


def _folder_name(name: str, where: str) -> str:
    folder = slug(name)
    if len(folder.encode()) > MAX_FOLDER_BYTES:
        raise SpecError(f"{where}: {name!r} makes a folder name longer than {MAX_FOLDER_BYTES} bytes; shorten it "
                        "(for a sweep: shorten its values, e.g. put its files in a folder with a shorter path)")
    return folder


def _experiment_name(name: str, source: str) -> str:
    if not name.strip() or "/" in name or "\\" in name or name in (".", "..") or not name.isprintable():
        raise SpecError(f"{source}: name {name!r} cannot name the results folder results/runs/<name> (no '/', '\\', "
                        "'..', control characters or empty names); use a plain name such as 'my-experiment'")
    return name


def _expand(name: str, body: Any, tasks: tuple[str, ...], source: str) -> list[Variant]:
    where = f"{source}: variants.{name}"
    body = _mapping(body, where, VARIANT_KEYS)
    intervention, config = body.get("intervention"), dict(body.get("config") or {})
    own_tasks = _names(body["tasks"], f"{where}.tasks") if "tasks" in body else tasks
    _distinct_folders(own_tasks, f"{where}.tasks", "tasks")  # (the spec's own list is checked once in parse)
    if intervention is None and (config or body.get("sweep")):
        raise SpecError(f"{where}: config and sweep need an intervention (e.g. intervention: dean)")
    points = _sweep_points(body.get("sweep"), config, where)
    backend = _backend(body.get("backend"), where)
    if points is None:
        return [Variant(name, name, intervention, _checked(intervention, config, where), own_tasks, None, backend)]
    return [Variant(_point_name(name, extra), name, intervention, _checked(intervention, {**config, **extra}, where),
                    own_tasks, next(iter(extra.items())), backend) for extra in points]


def _backend(value: Any, where: str) -> str | None:
    if value is not None and value not in BACKENDS:
        raise SpecError(f"{where}.backend must be one of {', '.join(BACKENDS)}; got {value!r}")
    return value


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

    try:
        cls = get(intervention).Config
        _no_booleans_for_values(cls, config, where)
        cls.from_args(dict(config), owner="config")
    except (UnknownInterventionError, ConfigError) as exc:
        raise SpecError(f"{where}: {exc}") from exc
    return config


def _no_booleans_for_values(cls: type, config: dict[str, Any], where: str) -> None:
    """``epsilon: yes`` is True to YAML and 1.0 to a float field: refuse booleans for keys that are not true/false."""
    hints = typing.get_type_hints(cls)
    for key, value in config.items():
        if isinstance(value, bool) and key in hints and not _takes_bool(hints[key]):
            takes = "a number" if {int, float} & set(typing.get_args(hints[key]) or [hints[key]]) else "text"
            fix = "write a number, e.g. 8" if takes == "a number" else "put the value in quotes"
            raise SpecError(f"{where}: {key!r} is {value!r}, a boolean, but {key!r} takes {takes}; {fix} "
                            f"({BOOLEAN_NOTE})")


def _takes_bool(hint: Any) -> bool:
    if hint is bool or hint is Any:
        return True
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return any(isinstance(a, bool) for a in args)
    return any(_takes_bool(a) for a in args)
