"""What the built-in interventions show on the leaderboard: their ``summary(facts)`` and ``artifact_alias``.

An intervention's summary turns the facts its fit recorded into the report's text columns (keys as in
:data:`fairpriv.report.model.INFO_COLUMNS`: ``epsilon``, ``delta``, ``accountant``, ``zeroed``, ``data``; any other
key becomes a column of its own). The built-ins inherit theirs from the small classes here, which import neither
torch nor lm-eval, so that ``fairpriv report`` can summarise a run recorded before results carried a summary
without loading the intervention itself (see :func:`fairpriv.interventions.registry.described`).
"""

from __future__ import annotations

from typing import Any, ClassVar

NOT_PRIVATE = "none (not private)"


def privacy(facts: dict[str, Any]) -> dict[str, str]:
    """The DP guarantee a training run reached (epsilon, delta, accountant), or that it has none."""
    if facts.get("private") and facts.get("epsilon") is not None:
        return {"epsilon": f"{facts['epsilon']:.3g}", "delta": f"{facts['delta']:.2g}",
                "accountant": str(facts["accountant"])}
    return {"epsilon": NOT_PRIVATE}


def data(facts: dict[str, Any]) -> dict[str, str]:
    """The data a fit used: ``source (kind, n=N)``, or ``kind: source`` pairs for DEAN's scoring sets; {} if none."""
    given = facts.get("data") or (facts.get("scoring") or {}).get("data")
    if isinstance(given, dict) and "source" in given:
        return {"data": f"{given['source']} ({given.get('kind', 'text')}, n={given.get('n', '?')})"}
    if isinstance(given, dict):
        shown = ", ".join(f"{k}: {v.get('source', '?')}" for k, v in given.items() if isinstance(v, dict))
        return {"data": shown} if shown else {}
    return {}


class TrainingSummary:
    """``sft``, ``cda`` and ``dp``: the privacy guarantee and the training data."""

    artifact_alias: ClassVar[str | None] = None

    @classmethod
    def summary(cls, facts: dict[str, Any]) -> dict[str, str]:
        return {**privacy(facts), **data(facts)}


class DeanSummary:
    """``dean``: how many weights it zeroed and the data it scored them on; its artifact is also given as ``mask=``."""

    artifact_alias: ClassVar[str | None] = "mask"

    @classmethod
    def summary(cls, facts: dict[str, Any]) -> dict[str, str]:
        total = facts.get("total")
        zeroed = {"zeroed": f"{total['zeroed']:,}"} if isinstance(total, dict) and "zeroed" in total else {}
        return {**zeroed, **data(facts)}
