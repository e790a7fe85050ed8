"""The import contract of the package (docs/design.md, "Layers"): every fairpriv module imports only modules of its
own unit or of lower layers, and no two modules import each other, directly or through others.

Imports are read from the source with ``ast`` (module-level imports and imports inside functions alike), so a
function-local import cannot hide a cycle. ``fairpriv/__init__.py`` is the package's entry (it installs the
plugin) and is left out; importing a submodule counts as importing that module only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fairpriv"

# Bottom first. A unit is a top-level module or sub-package of fairpriv.
LAYERS = [
    ["hashing", "names", "paths", "atomic", "files", "options", "lm_eval_compat"],  # base helpers
    ["artifacts", "assets", "lexicon"],  # what is on disk: artifacts, the offline catalogue, word lists
    ["modelref", "modelargs"],  # what pretrained= and the model keys of --model_args mean
    ["metrics", "scorers", "text"],  # pure kernels; classifiers and judges; CDA swaps
    ["tasks"],  # lm-eval task YAMLs and their data sources
    ["data"],  # training and scoring data of the interventions
    ["interventions"],  # the extension point and the built-ins
    ["fit"],  # materialise an intervention
    ["export"],  # a variant as a plain Hugging Face folder
    ["models"],  # lm-eval model classes: <name>-hf, <name>-vllm
    ["plugin", "hook", "judge_stage", "experiment"],  # lm-eval glue, the judge stage, experiment runs
    ["analyze", "report"],  # commands over models and results
    ["cli", "__main__"],  # the command line
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "__init__.py"}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The fairpriv modules ``name`` imports (a ``from pkg import sub`` of a submodule names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, package)
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known}


def absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def unit(module: str) -> str:
    return module.split(".")[1]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def test_every_unit_has_a_layer():
    assert sorted({unit(m) for m in modules()} - set(LAYER)) == []


def test_no_import_points_up_a_layer(graph):
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if LAYER.get(unit(b), -1) > LAYER.get(unit(a), -1))
    assert upward == []


def test_no_import_cycle(graph):
    assert find_cycle(graph) is None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in sorted(graph):
        if state.get(root):
            continue
        stack, path = [(root, iter(sorted(graph[root])))], [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_the_checks_catch_what_they_are_for():
    """The cycle finder and the layer table see a planted cycle and a planted upward import."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert LAYER["report"] > LAYER["metrics"] > LAYER["hashing"]
