"""What every ``fairpriv analyze`` command writes: a strict-JSON report and its Markdown table, each written to a
temporary name and renamed, so an interrupted run never leaves half a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fairpriv.atomic import write_text as write_atomic


def json_safe(value: Any) -> Any:
    """NaN and inf become None (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_report(json_path: Path, report: dict, md_path: Path, table: str) -> None:
    write_atomic(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_atomic(md_path, table)
