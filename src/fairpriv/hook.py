"""The start-up hook that makes the stock ``lm_eval`` command see fairpriv (lm-eval 0.4.13 finds no plugins).

``fairpriv hook install`` writes one ``.pth`` file into site-packages. Python runs its single line at start-up; the
line only puts a tiny import finder at the front of ``sys.meta_path`` and imports nothing (``python -X importtime
-c pass`` shows neither fairpriv nor lm_eval). The finder ignores every module except three of lm-eval's; when one
of those has been executed it calls :func:`fairpriv.plugin.on_import`, which registers the ``<name>-hf`` models,
adds fairpriv's task folder, and lets ``pretrained=fairpriv:NAME`` resolve for plain ``hf`` too.

Remove it with ``fairpriv hook remove`` or switch it off for one process with ``FAIRPRIV_DISABLE_HOOK=1``. If
fairpriv is uninstalled while the file stays behind, the finder finds no fairpriv and does nothing.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from fairpriv.atomic import write_text
from fairpriv.lm_eval_compat import watched_modules

PTH_NAME = "zz-fairpriv-lm-eval-hook.pth"
WATCHED = watched_modules()

# Executed at interpreter start-up (from the .pth line) and by `import fairpriv` (in process); keep it tiny.
FINDER_SOURCE = f'''
import sys

class FairprivLmEvalHook:
    """Calls fairpriv.plugin.on_import after one of lm-eval's watched modules has been executed."""
    _fairpriv_hook = True
    watched = {WATCHED!r}

    def find_spec(self, name, path=None, target=None):
        if name not in self.watched:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "_fairpriv_hook", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader.exec_module = _notifying(spec.loader.exec_module, name)
                return spec
        return None

def _notifying(exec_module, name):
    def exec_then_notify(module):
        exec_module(module)
        try:
            import fairpriv.plugin as plugin
        except ImportError:
            return  # fairpriv was uninstalled; the stale hook does nothing
        plugin.on_import(name, module)
    return exec_then_notify

if not any(getattr(f, "_fairpriv_hook", False) for f in sys.meta_path):
    sys.meta_path.insert(0, FairprivLmEvalHook())
'''


def pth_line() -> str:
    """The single line of the .pth file; site.py executes lines that start with ``import``."""
    return f'import os; os.environ.get("FAIRPRIV_DISABLE_HOOK") or exec({FINDER_SOURCE!r}, {{}})\n'


def install_finder() -> None:
    """Install the same finder in this process (what ``import fairpriv`` does). A finder that the start-up line of
    an older fairpriv installed watches today's modules from now on, so an upgrade needs no new ``hook install``."""
    exec(FINDER_SOURCE, {})
    for finder in sys.meta_path:
        if getattr(finder, "_fairpriv_hook", False):
            finder.watched = WATCHED


def site_dir() -> Path:
    """site-packages of the running interpreter (the virtual environment's, when one is active)."""
    return Path(sysconfig.get_paths()["purelib"])


def pth_path(target: Path | None = None) -> Path:
    return (target or site_dir()) / PTH_NAME


def install(target: Path | None = None) -> Path:
    path = pth_path(target)
    write_text(path, pth_line())
    return path


def remove(target: Path | None = None) -> bool:
    path = pth_path(target)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def status(target: Path | None = None) -> str:
    path = pth_path(target)
    if not path.exists():
        return f"not installed (would be {path}); run `fairpriv hook install`"
    state = "installed" if path.read_text() == pth_line() else "installed but outdated; run `fairpriv hook install`"
    return f"{state}: {path} (python {sys.version.split()[0]})"
