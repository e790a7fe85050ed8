"""The data-source switch shared by the offline general-capability tasks.

lm-eval hands every ``custom_dataset`` loader the run's metadata (``--metadata`` JSON merged with the model args), so
a ``source`` key there reaches the loaders. The offline tasks only run on registry-shipped data; the online
measurements are lm-eval's built-in ``mmlu`` and ``wikitext`` tasks, unchanged, which a loader cannot swap in (a
group's member list is fixed in its YAML), so ``source=online`` sends the user to the online group by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from fairpriv import assets

OFFLINE = "offline"
ONLINE = "online"
SOURCES = (OFFLINE, ONLINE)
ONLINE_GROUP = "general_capability_online"


class SourceError(ValueError):
    """An unknown or unusable ``source`` value; the message names the fix."""


def check_source(metadata: Mapping[str, Any], task: str) -> str:
    """The source a run asked ``task`` for (default offline); only offline data can be served here."""
    source = str(metadata.get("source") or OFFLINE).strip().lower()
    if source not in SOURCES:
        raise SourceError(
            f"{task}: unknown source {metadata.get('source')!r} in --metadata; use one of {', '.join(SOURCES)}"
        )
    if source == ONLINE:
        raise SourceError(
            f"{task} reads registry-shipped data only; for the online measurements (lm-eval's own mmlu and "
            f"wikitext, unchanged) run `--tasks {ONLINE_GROUP}` (or `--tasks mmlu,wikitext`)"
        )
    return source


def asset_file(asset: str, member: str) -> Path:
    """A verified file of a fetched asset; a missing asset raises the error that names `fairpriv assets fetch`."""
    return assets.path(asset) / member


def provenance(asset: str, member: str) -> str:
    """``"ASSET (PKG==VER) MEMBER sha256:HEX"``: what a result's data came from."""
    entry = assets.get(asset)
    return f"{asset} ({entry.requirement}) {member} sha256:{entry.members[member]}"
