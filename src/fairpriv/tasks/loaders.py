"""Data loaders for task YAMLs (``custom_dataset``): packaged files located from the package, not the cwd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fairpriv import files
from fairpriv.atomic import write_text
from fairpriv.tasks import TASKS_DIR

TASK_DATA = files.FileKind("task data file", "one JSON object per line", "reinstall fairpriv")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a malformed line raises with its file and line number."""
    return files.read_jsonl(path, TASK_DATA)


def to_jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> None:
    """Freeze generated rows into ``path``: written to a temporary name, then renamed into place."""
    write_text(path, to_jsonl(items))
    print(f"wrote {path}")


def packaged(data_file: str, split: str = "test", **_metadata: Any):
    """``custom_dataset`` for a JSONL file shipped under ``fairpriv/tasks``. lm-eval passes the run's metadata
    (model args included) as keyword arguments; this loader needs none of them."""
    import datasets

    path = TASKS_DIR / data_file
    if not path.is_file():
        raise FileNotFoundError(f"packaged task data {path} is missing; reinstall fairpriv")
    return datasets.DatasetDict({split: datasets.Dataset.from_list(read_jsonl(path))})
