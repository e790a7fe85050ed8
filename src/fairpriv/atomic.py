"""Atomic writes: a file is written under a hidden temporary name in its own folder, then renamed over the target,
so an interrupted run never leaves half a file where a complete one is expected (a rename within one file system
replaces the target in one step)."""

from __future__ import annotations

import os
from pathlib import Path


def temp_sibling(path: Path, suffix: str = "") -> Path:
    """A hidden temporary name beside ``path``, unique to this process (``.NAME.tmp-PID``, plus ``suffix``)."""
    return path.parent / f".{path.name}.tmp-{os.getpid()}{suffix}"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the temporary file is removed whatever happens."""
    tmp = temp_sibling(Path(path))
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
