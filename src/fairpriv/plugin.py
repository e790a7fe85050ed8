"""What fairpriv adds to lm-eval, applied when lm-eval's own modules load (all three entry doors end here).

* ``lm_eval.api.registry``: every intervention becomes two lazy models, ``<name>-hf`` and ``<name>-vllm`` (lm-eval's built-in models are
  registered first: lm-eval only fills an *empty* registry by itself);
* ``lm_eval.tasks.manager``: fairpriv's task folder is added to every TaskManager's include paths, next to a
  user's ``--include_path``;
* ``lm_eval.models.huggingface``: ``pretrained=fairpriv:NAME`` (and ``tokenizer=``) resolve to the embedded asset
  for plain ``hf`` too, HFLM gains the ``fairpriv_next_token_divergence`` request method, and ``--use_cache`` gives
  each fairpriv variant its own database (a model without ``fairpriv_cache_salt``, such as ``hf``, keeps the user's).
  Nothing else about ``hf`` changes.

The doors: the start-up hook (:mod:`fairpriv.hook`), ``fairpriv eval`` and ``import fairpriv`` (which calls
:func:`activate`). Each step is idempotent, and a failure is reported as a warning instead of breaking lm-eval. Every
change to lm-eval's objects is a function of :mod:`fairpriv.lm_eval_compat`; before the first one, the installed
lm-eval's version is checked, and an unsupported one gets one warning that says what to install, and no changes.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from types import ModuleType

from fairpriv import hook, lm_eval_compat
from fairpriv.interventions import registry
from fairpriv.lm_eval_compat import CLASS_PREFIX
from fairpriv.modelref import resolve
from fairpriv.models import cache
from fairpriv.tasks import TASKS_DIR

_done: set[str] = set()


def activate() -> None:
    """Apply fairpriv to lm-eval modules already imported, and watch for the others."""
    hook.install_finder()
    for name in hook.WATCHED:
        if name in sys.modules:
            on_import(name, sys.modules[name])


def on_import(name: str, module: ModuleType) -> None:
    """Called by the finder right after lm-eval module ``name`` was executed."""
    if name in _done:
        return
    _done.add(name)
    if not lm_eval_supported():
        return
    try:
        HANDLERS[name](module)
    except Exception as exc:  # never take lm-eval down with us
        warnings.warn(
            f"fairpriv could not extend lm-eval ({name}: {exc!r}); lm-eval runs without fairpriv. "
            "Set FAIRPRIV_DISABLE_HOOK=1 or run `fairpriv hook remove` to silence this.",
            stacklevel=2,
        )


def lm_eval_supported() -> bool:
    """Whether the installed lm-eval is one fairpriv supports; if not, one warning that names the installed
    version, the supported range and the fix, and nothing of fairpriv is applied (lm-eval runs as it is)."""
    try:
        lm_eval_compat.check_version()
        return True
    except lm_eval_compat.UnsupportedLmEval as exc:
        if not _done.issuperset(HANDLERS):
            warnings.warn(f"{exc}. lm-eval runs without fairpriv.", stacklevel=3)
        _done.update(HANDLERS)
        return False


def register_models(registry_module: ModuleType | None = None) -> None:
    """Register ``<name>-hf`` for every known intervention (the ``lm_eval.models`` entry point, too)."""
    if not lm_eval_supported():
        return
    import lm_eval.models  # noqa: F401  (registers lm-eval's own models before ours)

    registry.on_register(expose_model)
    register_model_names(registry.names())
    lm_eval_compat.route_plain_vllm()


def expose_model(intervention: str) -> None:
    """What the intervention registry calls for an intervention added at run time."""
    register_model_names([intervention])


def register_model_names(intervention_names: Iterable[str]) -> None:
    """Lazy lm-eval entries ``<name>-hf`` -> ``fairpriv.models.hf:lm_for__<name>`` and ``<name>-vllm`` ->
    ``fairpriv.models.vllm:lm_for__<name>`` (only if lm-eval is loaded; vLLM itself is imported on first use)."""
    for name in intervention_names:
        for engine in ENGINES:
            lm_eval_compat.register_lazy_model(model_name(name, engine), model_target(name, engine))


ENGINES = ("hf", "vllm")  # the suffix of a model name and the fairpriv.models module that implements it


def model_name(intervention: str, engine: str = "hf") -> str:
    return f"{intervention}-{engine}"


def model_target(intervention: str, engine: str = "hf") -> str:
    return f"fairpriv.models.{engine}:{CLASS_PREFIX}{intervention}"


def add_task_folder(manager_module: ModuleType) -> None:
    """Make every TaskManager also index fairpriv's tasks."""
    lm_eval_compat.extend_include_path(manager_module, with_fairpriv_tasks)


def with_fairpriv_tasks(include_path):
    """The user's include path(s) plus fairpriv's task folder (once)."""
    paths = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
    if not any(str(p) == str(TASKS_DIR) for p in paths):
        paths.append(TASKS_DIR)
    return paths


def resolve_asset_names(hf_module: ModuleType) -> None:
    """Let plain ``hf`` accept ``pretrained=fairpriv:NAME`` and ``tokenizer=fairpriv:NAME``, answer the
    ``fairpriv_next_token_divergence`` requests of ``gender_bias_divergence`` (see fairpriv.models.divergence), and
    give each fairpriv variant its own ``--use_cache`` database (see fairpriv.models.cache)."""
    from fairpriv.models.divergence import attach  # imports numpy and scipy: only once lm-eval's HF module loads

    cache.install()
    lm_eval_compat.wrap_init(hf_module.HFLM, hflm_args)
    attach(hf_module.HFLM)


def hflm_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """HFLM's arguments with ``fairpriv:NAME`` in ``pretrained`` (also positional) and ``tokenizer`` resolved."""
    return lm_eval_compat.model_path_args(args, kwargs, resolve)


def extend_vllm(vllm_module: ModuleType) -> None:
    """Give lm-eval's ``VLLM`` what ``hf`` gets (see :func:`fairpriv.models.vllm.prepare`), so plain ``--model vllm``
    answers the divergence tasks too."""
    from fairpriv.models import vllm  # imports numpy and scipy: only once lm-eval's vLLM module loads

    vllm.prepare(vllm_module.VLLM)


HANDLERS = {
    "lm_eval.api.registry": register_models,
    "lm_eval.tasks.manager": add_task_folder,
    "lm_eval.models.huggingface": resolve_asset_names,
    lm_eval_compat.VLLM_MODULE: extend_vllm,
}
