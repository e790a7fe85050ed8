"""fairpriv's lm-eval task folder: YAML files (data and wiring only) and the project-authored data they load.

Relative ``data_files`` in a task YAML resolve against the working directory, not the YAML, so packaged data is
loaded through ``custom_dataset: !function fairpriv.tasks.loaders.packaged`` with a path relative to this folder.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

# Tasks whose requests ask for full next-token distributions (fairpriv_next_token_divergence), which only the Hugging
# Face models answer; `fairpriv run` runs them, and every group that holds one, on `hf` whatever the backend.
HF_ONLY_TASKS = frozenset({"gender_bias_divergence", "race_bias_divergence", "religion_bias_divergence"})


def needs_hf(name: str) -> bool:
    """Whether task or group ``name`` holds a task of :data:`HF_ONLY_TASKS` (groups of this folder only)."""
    return name in _hf_only_names()


def _hf_only_names() -> frozenset[str]:
    global _HF_ONLY
    if _HF_ONLY is None:
        groups, found = group_members(), set(HF_ONLY_TASKS)
        while grown := {g for g, members in groups.items() if g not in found and found & set(members)}:
            found |= grown
        _HF_ONLY = frozenset(found)
    return _HF_ONLY


_HF_ONLY: frozenset[str] | None = None


def group_members() -> dict[str, list[str]]:
    """Every group defined in this folder's YAML files and the names it lists (tasks or groups)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !function etc.: not needed here
    out: dict[str, list[str]] = {}
    for path in sorted(TASKS_DIR.rglob("*.yaml")):
        data = yaml.load(path.read_text(), Loader=Loader)
        if isinstance(data, dict) and "group" in data and isinstance(data.get("task"), list):
            out[str(data["group"])] = [t if isinstance(t, str) else str(t.get("task")) for t in data["task"]]
    return out
