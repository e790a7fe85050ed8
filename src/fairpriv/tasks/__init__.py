"""fairpriv's lm-eval task folder: YAML files (data and wiring only) and the project-authored data they load.

Relative ``data_files`` in a task YAML resolve against the working directory, not the YAML, so packaged data is
loaded through ``custom_dataset: !function fairpriv.tasks.loaders.packaged`` with a path relative to this folder.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

# `fairpriv run` with backend vllm sends a task or group whose requests are all log-likelihood kinds (no
# generate_until) to settings.loglikelihood_backend instead (default hf: the faster engine for them on a CPU).
GENERATION = "generate_until"


def likelihood_only(name: str) -> bool:
    """Whether task, group or tag ``name`` (of this folder) makes only log-likelihood requests (``loglikelihood``,
    ``multiple_choice``, ``loglikelihood_rolling``, the next-token divergences); False for a name defined elsewhere."""
    kinds = request_kinds(name)
    return bool(kinds) and GENERATION not in kinds


def request_kinds(name: str) -> frozenset[str]:
    """The ``output_type`` of every task under task, group or tag ``name`` of this folder (empty if unknown)."""
    global _KINDS
    if _KINDS is None:
        yamls = task_yamls()
        _KINDS = closure(task_output_types(yamls), {**tag_members(yamls), **group_members(yamls)})
    return _KINDS.get(name, frozenset())


_KINDS: dict[str, frozenset[str]] | None = None


def closure(kinds: dict[str, str], members: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """Every task's kind, and each group's or tag's union of its members' kinds (groups of groups too)."""
    out = {task: frozenset({kind}) for task, kind in kinds.items()}
    pending = dict(members)
    while grown := {g: frozenset().union(*(out[m] for m in ms)) for g, ms in pending.items()
                    if all(m in out for m in ms)}:
        out.update(grown)
        pending = {g: ms for g, ms in pending.items() if g not in grown}
    return out


def task_output_types(yamls: dict[Path, dict]) -> dict[str, str]:
    """Task name -> ``output_type`` for every task YAML of :func:`task_yamls`."""
    out = {}
    for data in yamls.values():
        if isinstance(data.get("task"), str) and "output_type" in data:
            out[data["task"]] = str(data["output_type"])
    return out


def tag_members(yamls: dict[Path, dict]) -> dict[str, list[str]]:
    """Tag -> the tasks of :func:`task_yamls` that carry it."""
    out: dict[str, list[str]] = {}
    for data in yamls.values():
        tags = data.get("tag") or []
        for tag in [tags] if isinstance(tags, str) else tags:
            if isinstance(data.get("task"), str):
                out.setdefault(str(tag), []).append(data["task"])
    return out


def task_yamls() -> dict[Path, dict]:
    """Every YAML of this folder (also ``_template_yaml`` files) with its ``include`` chain merged in."""
    files = sorted({*TASKS_DIR.rglob("*.yaml"), *TASKS_DIR.rglob("*_yaml")})
    return {path: merged(path) for path in files}


def merged(path: Path, depth: int = 0) -> dict:
    """A task YAML's mapping over the one it ``include``s (a path relative to it), as lm-eval merges them."""
    data = read_yaml(path)
    include = data.get("include")
    if not isinstance(include, str) or depth > 8:
        return data
    return {**merged(path.parent / include, depth + 1), **data}


def read_yaml(path: Path) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !function etc.: not needed here
    data = yaml.load(path.read_text(), Loader=Loader)
    return data if isinstance(data, dict) else {}


def group_members(yamls: dict[Path, dict] | None = None) -> dict[str, list[str]]:
    """Every group defined in this folder's YAML files (or in ``yamls``) and the names it lists (tasks or groups)."""
    out: dict[str, list[str]] = {}
    for data in (task_yamls() if yamls is None else yamls).values():
        if "group" in data and isinstance(data.get("task"), list):
            out[str(data["group"])] = [t if isinstance(t, str) else str(t.get("task")) for t in data["task"]]
    return out
