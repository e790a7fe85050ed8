"""The lm-eval filter that judges all generations of an awareness task in one batch (DEAN / SPIN evaluation).

lm-eval hands a filter every response of a task at once, with the documents; the judge named in the documents
(stamped by :mod:`fairpriv.tasks.awareness.sources` from the run's ``--metadata``) labels them in batches, and each
instance's filtered response becomes a small verdict record that ``process_results`` turns into metrics and that
``--log_samples`` keeps for audit: ``{"label": 0|1|-1, "reason": str, "judge": name}``. A model judge is loaded for
the task and freed when its verdicts are in. ``fairpriv judge`` (:mod:`fairpriv.judge_stage`) re-judges logged
generations later through :func:`verdict_records`, so both paths produce the same records.
"""

from __future__ import annotations

from typing import Any

from fairpriv.scorers import loaded_judge


def first_text(resp: Any) -> str:
    """A generation as text: lm-eval keeps a list per instance (one entry per repeat); the paper strips it."""
    text = resp[0] if isinstance(resp, (list, tuple)) else resp
    return str(text).strip()


def judge_options(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The judge named in a document and its options (documents logged before ``judge_device``/``judge_dtype``
    existed lack those keys: the judge's defaults apply)."""
    name = doc["judge"]
    if name == "rule":
        return name, {}
    options = {"model": doc["judge_model"], "batch_size": int(doc["judge_batch_size"])}
    extra = {"device": doc.get("judge_device"), "dtype": doc.get("judge_dtype")}
    return name, {**options, **{k: v for k, v in extra.items() if v}}


def verdict_records(judge: Any, docs: list[dict[str, Any]], responses: list[str]) -> list[dict[str, Any]]:
    """One ``{"label", "reason", "judge"}`` record per (document, response text)."""
    verdicts = judge.judge_batch([d["prompt"] for d in docs], responses, [d["kind"] for d in docs])
    return [{"label": v.label, "reason": v.reason, "judge": judge.name} for v in verdicts]


def judge_responses(resps: list[Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filter_fn`` for lm-eval's ``custom`` filter."""
    if not docs:
        return []
    name, options = judge_options(docs[0])
    with loaded_judge(name, **options) as judge:
        return verdict_records(judge, docs, [first_text(r) for r in resps])
