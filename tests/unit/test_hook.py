"""The start-up hook: a .pth line that imports nothing, extends lm-eval when it loads, and can be removed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fairpriv
from fairpriv import hook

SRC = Path(fairpriv.__file__).parents[1]
# The child runs with -S (no site processing, so this environment's own hook stays out), puts site-packages and
# fairpriv's source on sys.path by hand, then lets site process only the test folder's .pth file.
CHECK = (
    "import sys, site; sys.path[:0] = [sys.argv[2], sys.argv[3]]; site.addsitedir(sys.argv[1]);"
    "import lm_eval.api.registry as r; import lm_eval.models;"
    "print('zero-rows-hf' in r.model_registry, r.get_model('hf').__name__)"
)


def run(code, site_dir, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    argv = [sys.executable, "-S", "-c", code, str(site_dir), str(hook.site_dir()), str(SRC)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_install_status_remove(tmp_path):
    assert "not installed" in hook.status(tmp_path)
    path = hook.install(tmp_path)
    assert path == tmp_path / hook.PTH_NAME and path.read_text() == hook.pth_line()
    assert hook.status(tmp_path).startswith("installed:")
    path.write_text("import os\n")
    assert "outdated" in hook.status(tmp_path)
    assert hook.remove(tmp_path) and not path.exists() and not hook.remove(tmp_path)


def test_pth_line_is_one_import_line():
    line = hook.pth_line()
    assert line.startswith("import ") and line.count("\n") == 1 and line.endswith("\n")


def test_pth_line_imports_nothing_at_startup():
    before = set(sys.modules)
    exec(hook.pth_line(), {})
    assert not {m for m in set(sys.modules) - before if "fairpriv" in m or "lm_eval" in m}


def test_hooked_interpreter_registers_intervention_models(tmp_path, fixture_plugin):
    hook.install(tmp_path)
    # `python -S`-free child that has never imported fairpriv: only the .pth file can register the models
    assert run(CHECK, tmp_path) == "True HFLM"


def test_disable_switch_and_removal(tmp_path, fixture_plugin):
    hook.install(tmp_path)
    assert run(CHECK, tmp_path, env_extra={"FAIRPRIV_DISABLE_HOOK": "1"}) == "False HFLM"
    hook.remove(tmp_path)
    assert run(CHECK, tmp_path) == "False HFLM"


def test_without_hook_lm_eval_still_lists_its_own_models(tmp_path):
    assert run(CHECK, tmp_path)== "False HFLM"


@pytest.mark.skipif(not hook.pth_path().exists(), reason="hook not installed in this environment (make test installs it)")
def test_python_startup_imports_neither_fairpriv_nor_lm_eval():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True)
    imported = [line.split("|")[-1].strip() for line in out.stderr.splitlines()]
    assert imported and not [m for m in imported if "fairpriv" in m or "lm_eval" in m]


def test_a_finder_from_an_older_start_up_line_learns_the_watched_modules(monkeypatch):
    """An upgrade adds a watched module (lm-eval's vLLM module); the finder that an older ``.pth`` line installed
    at start-up watches it too once fairpriv loads, without a new ``fairpriv hook install``."""
    class OlderFinder:
        _fairpriv_hook = True
        watched = ("lm_eval.api.registry", "lm_eval.tasks.manager", "lm_eval.models.huggingface")

        def find_spec(self, name, path=None, target=None):
            return None

    older = OlderFinder()
    monkeypatch.setattr(sys, "meta_path", [older, *[f for f in sys.meta_path if not getattr(f, "_fairpriv_hook", 0)]])
    hook.install_finder()
    assert older.watched == hook.WATCHED and "lm_eval.models.vllm_causallms" in older.watched
    assert sum(getattr(f, "_fairpriv_hook", False) for f in sys.meta_path) == 1  # no second finder
