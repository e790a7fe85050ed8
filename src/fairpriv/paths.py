"""Where fairpriv keeps what it caches (``$FAIRPRIV_HOME``, else ``~/.cache/fairpriv``: assets, artifacts, exports,
DEAN scores) and the check that a folder it must write can be written, with the message that names the fix."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: ``$FAIRPRIV_HOME``, else ``~/.cache/fairpriv``. Not created here."""
    return Path(os.environ.get("FAIRPRIV_HOME") or "~/.cache/fairpriv").expanduser()


def writable_dir(folder: Path) -> str | None:
    """Create ``folder`` (with its parents) and check that it can be written: ``None``, or the reason it cannot."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if os.access(folder, os.W_OK | os.X_OK) else "permission denied"


def not_writable(folder: Path, reason: str) -> str:
    """The message for a folder fairpriv must write and cannot: the folder, why, and the fix."""
    root = home().resolve()
    inside = Path(folder).resolve() == root or root in Path(folder).resolve().parents
    fix = (f"set FAIRPRIV_HOME to a writable folder (it is {home()}), or make that folder writable" if inside
           else "choose a writable folder")
    return f"fairpriv cannot write to {folder} ({reason}): the folder is not writable; {fix}"
