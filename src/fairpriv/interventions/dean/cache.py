"""The DEAN score cache: each matrix's top lists for one (model weights, data, scoring settings), by content hash.

Scoring costs 3 x n backward passes; selecting costs nothing. Top lists are sorted by score, so the lists for a
fraction K contain the exact lists for every smaller fraction as prefixes: a p/q sweep scores once and selects
many times. Entries live in ``$FAIRPRIV_HOME/dean-scores/<key>/`` and are written to a temporary folder first, so an
interrupted scoring run leaves nothing half-written (its stale temporary folder is removed by the next store).
``info.json`` records the sha256 of the lists file (and a checksum of itself); an entry that fails the check is
discarded with a warning and scored again, so a flipped byte never reaches a mask.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from fairpriv.artifacts import clear_stale
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.paths import home, not_writable, writable_dir

log = logging.getLogger(__name__)

LISTS = "lists.safetensors"
INFO = "info.json"


def root() -> Path:

    return home() / "dean-scores"


def key(identity: dict[str, Any]) -> str:
    return canonical_hash(identity)


def _folder(key: str) -> Path:
    return root() / key[:32]


def _info(key: str) -> dict[str, Any] | None:
    try:
        return json.loads((_folder(key) / INFO).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _checksum(info: dict[str, Any]) -> str:
    return canonical_hash({k: v for k, v in info.items() if k != "info_sha256"})


def verify(key: str, info: dict[str, Any]) -> str | None:
    """``None`` when the entry's files match the sha256 stored with them, else what is wrong."""
    if not isinstance(info, dict) or info.get("info_sha256") != _checksum(info):
        return f"{_folder(key) / INFO} does not match its checksum (or predates checksums)"
    lists = _folder(key) / LISTS
    if not lists.is_file() or sha256_file(lists) != info.get("lists_sha256"):
        return f"{lists} is missing or corrupt (sha256 mismatch)"
    return None


def load(key: str, fraction: float) -> tuple[dict | None, dict[str, Any]]:
    """The cached lists and their info (fraction, dropped examples) when they cover ``fraction``; ``(None, {})``
    otherwise, or when the entry is unreadable or fails its sha256 check (then it is scored again)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = _info(key)
    if info is None or info.get("fraction", 0) < fraction:
        return None, {}
    problem = verify(key, info)
    if problem is not None:
        log.warning("fairpriv: DEAN score cache entry discarded: %s; scoring again", problem)
        return None, {}
    try:
        return load_file(str(_folder(key) / LISTS)), info
    except (OSError, SafetensorError):
        return None, {}


def store(key: str, lists: dict, fraction: float, dropped: dict[str, int]) -> dict[str, Any]:
    """Write the entry atomically, with the sha256 of its lists; returns its info. A cache folder that cannot be
    written only costs the reuse: a warning, and the scores are not kept."""
    info = {"fraction": fraction, "dropped": dropped}
    dest = _folder(key)
    reason = writable_dir(dest.parent)
    if reason is not None:
        log.warning("fairpriv: DEAN scores not cached: %s", not_writable(dest.parent, reason))
        return info
    clear_stale(dest)
    _write(dest, lists, info)
    return info


def _write(dest: Path, lists: dict, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in lists.items()}, str(tmp / LISTS))
    stamped = {**info, "lists_sha256": sha256_file(tmp / LISTS)}
    (tmp / INFO).write_text(json.dumps({**stamped, "info_sha256": _checksum(stamped)}, sort_keys=True))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
