"""Where interventions are found: built-ins listed lazily by ``"module:attr"``, third parties by entry point.

A third-party package declares, in its own ``pyproject.toml``::

    [project.entry-points."fairpriv.interventions"]
    my-method = "my_package.my_module:MyIntervention"

and ``my-method-hf`` becomes an lm-eval model with nothing else to do. Storage and lazy loading reuse lm-eval's
own ``Registry``; lookups add "did you mean" suggestions and name the package of an entry point that fails. A plugin
may not take a built-in's name. :func:`described` finds what the report reads of an intervention (its ``summary``
and ``artifact_alias``) without lm-eval, and for a built-in without torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points

from fairpriv import lm_eval_compat
from fairpriv.interventions.base import Intervention
from fairpriv.names import did_you_mean

ENTRY_POINT_GROUP = "fairpriv.interventions"

# Built-in interventions, materialised on first use.
BUILTINS: dict[str, str] = {
    "dean": "fairpriv.interventions.dean:Dean",
    "sft": "fairpriv.interventions.training.sft:SFT",
    "dp": "fairpriv.interventions.training.dp:DP",
    "cda": "fairpriv.interventions.training.cda:CDA",
}

# The torch-free class each built-in inherits ``summary`` and ``artifact_alias`` from (what the report reads).
DESCRIPTIONS: dict[str, str] = {
    "dean": "fairpriv.interventions.summaries:DeanSummary",
    "sft": "fairpriv.interventions.summaries:TrainingSummary",
    "dp": "fairpriv.interventions.summaries:TrainingSummary",
    "cda": "fairpriv.interventions.summaries:TrainingSummary",
}

_lock = threading.Lock()
_registry = None
_listeners: list[Callable[[str], None]] = []  # called with the name of each intervention added at run time


class UnknownInterventionError(LookupError):
    """No intervention of that name; the message suggests close names and lists the known ones."""


class InterventionLoadError(ImportError):
    """An intervention was found but could not be imported or is not an Intervention subclass."""


class InterventionNameClash(LookupError):
    """A plugin's entry point takes the name of a built-in intervention."""


def registry():
    """The process-wide registry (built on first call: built-ins, then installed entry points)."""
    global _registry
    Registry = lm_eval_compat.registry_class()  # outside the lock: its import runs fairpriv.plugin, which calls us

    with _lock:
        if _registry is None:
            reg = Registry("intervention")
            for name, target in BUILTINS.items():
                reg.register(name, target=target)
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                _check_not_builtin(ep)
                if ep.name not in reg:
                    reg.register(ep.name, target=ep)
            _registry = reg
        return _registry


def _check_not_builtin(ep: EntryPoint) -> None:
    if ep.name in BUILTINS:
        dist = getattr(ep.dist, "name", None) or "unknown package"
        raise InterventionNameClash(
            f"the package {dist} declares the intervention '{ep.name}' (entry point {ep.value}), but fairpriv has a "
            f"built-in of that name ({BUILTINS[ep.name]}). Rename the entry point in {dist}'s pyproject.toml "
            f"([project.entry-points.\"{ENTRY_POINT_GROUP}\"]) and reinstall it."
        )


def described(name: str) -> type | None:
    """What has intervention ``name``'s ``summary(facts)`` and ``artifact_alias``, found without lm-eval: a built-in's
    torch-free base (:data:`DESCRIPTIONS`), a class registered at run time, an installed plugin's class (importing its
    package); None when no such intervention is installed or it fails to load."""
    if name in DESCRIPTIONS:
        return _target(DESCRIPTIONS[name])
    if _registry is not None and name in _registry:
        return _loaded(lambda: _registry.get(name))
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    return _loaded(found[0].load) if found else None


def _target(target: str) -> type:
    module, attr = target.split(":")
    return getattr(import_module(module), attr)


def _loaded(load) -> type | None:
    try:
        cls = load()
    except Exception:  # a broken plugin: the report describes the run without it
        return None
    return cls if isinstance(cls, type) and callable(getattr(cls, "summary", None)) else None


def names() -> list[str]:
    return sorted(registry().keys())


def register(name: str, target: type[Intervention] | str) -> None:
    """Add an intervention at run time (a class or a ``"module:attr"`` string); the listeners hear of it (the
    plugin's listener exposes ``name-hf`` and ``name-vllm``)."""
    registry().register(name, target=target)
    for listener in list(_listeners):
        listener(name)


def on_register(listener: Callable[[str], None]) -> None:
    """Call ``listener(name)`` for every intervention :func:`register` adds from now on (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def get(name: str) -> type[Intervention]:
    """The Intervention subclass registered as ``name``."""
    reg = registry()
    if name not in reg:
        raise UnknownInterventionError(unknown_message(name, list(reg.keys())))
    origin = _origin(reg, name)
    try:
        cls = reg.get(name)
    except Exception as exc:  # an entry point whose package is broken or half-installed
        raise InterventionLoadError(
            f"intervention '{name}' ({origin}) failed to load: {exc}. Reinstall the package that provides it."
        ) from exc
    _check_class(name, cls, origin)
    return cls


def unknown_message(name: str, known: list[str]) -> str:
    hint = did_you_mean(name, known, n=3)
    listed = ", ".join(sorted(known)) or "(none installed)"
    return (
        f"Unknown intervention '{name}'.{hint} Known interventions: {listed}. "
        f"Third-party interventions are installed as packages with a '{ENTRY_POINT_GROUP}' entry point."
    )


def _origin(reg, name: str) -> str:
    target = lm_eval_compat.placeholder(reg, name)  # lm-eval's Registry keeps the placeholder until first use
    if isinstance(target, EntryPoint):
        dist = getattr(target.dist, "name", None) or "unknown package"
        return f"entry point {target.value} from {dist}"
    return f"{target}" if isinstance(target, str) else f"{getattr(target, '__module__', '?')}"


def _check_class(name: str, cls: object, origin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Intervention)):
        raise InterventionLoadError(f"intervention '{name}' ({origin}) is not a fairpriv Intervention subclass")
    if cls.name != name:
        raise InterventionLoadError(
            f"intervention registered as '{name}' ({origin}) declares name '{cls.name}'; the two must match"
        )
