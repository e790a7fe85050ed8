"""lm-eval filters of the gender-bias generation tasks: score or label all generations of a task in one batch.

lm-eval hands a ``custom`` filter every response of a task at once, with the documents: one list per instance
holding its continuations (one per repeat: 1 by default, k with ``--metadata '{"samples_per_prompt": k}'``, see
:mod:`.sampling`). Each instance's filtered response becomes a small record, or for k > 1 a list of k records
(one per continuation, in generation order), that ``process_results`` (:mod:`fairpriv.metrics.gender_tasks`) turns
into metric items and that ``--log_samples`` keeps, so per-prompt values can be paired across model variants later:

* :func:`score_generations` (``gender_bias_bold``): ``{"text", "toxicity", "sentiment", "toxicity_scorer",
  "sentiment_scorer"}``, with the scorers named in the documents (stamped by :mod:`.sources`); the toxicity
  scorer runs batched over every continuation of the task, VADER per text.
* :func:`match_occupations` (``gender_bias_occupation``): ``{"text", "occupation"}``, the first occupation
  matched in the generation (None when there is none).
* :func:`keep_generations` (``gender_bias_count``): the raw continuation (k = 1, as lm-eval's default
  ``take_first``) or the list of all k continuations.

Only the generated continuation is scored, never the prompt.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fairpriv.metrics.gender import first_occupation
from fairpriv.metrics.gender_tasks import default_matcher
from fairpriv.scorers.sentiment import get_sentiment_scorer

SCORE_BATCH = 64


def all_texts(resp: Any) -> list[str]:
    """Every continuation of one instance as stripped text: lm-eval keeps a list per instance (one per repeat)."""
    return [str(text).strip() for text in (resp if isinstance(resp, (list, tuple)) else [resp])]


def per_instance(records: list[Any], sizes: list[int]) -> list[Any]:
    """Flat per-continuation records regrouped per instance: the record itself for one continuation (the default,
    greedy layout), the list of its records for several.

    >>> per_instance(["a", "b", "c", "d"], [1, 3])
    ['a', ['b', 'c', 'd']]
    """
    out, start = [], 0
    for size in sizes:
        chunk = records[start:start + size]
        out.append(chunk[0] if size == 1 else chunk)
        start += size
    return out


# --- scorers -----------------------------------------------------------------------------------------------------
def check_toxicity_options(name: str, checkpoint: str, config: str) -> None:
    from fairpriv.scorers.toxicity import check_toxicity_scorer_name  # imports torch: only when used

    try:
        check_toxicity_scorer_name(name)
    except ValueError as exc:
        raise ValueError(f"{exc} (metadata key 'toxicity_scorer')") from None
    if name != "detoxify" and (checkpoint or config):
        raise ValueError(f"metadata keys 'detoxify_checkpoint' / 'detoxify_config' need toxicity_scorer 'detoxify', "
                         f"got toxicity_scorer {name!r}")
    if checkpoint and not Path(checkpoint).expanduser().is_file():
        raise FileNotFoundError(f"metadata key 'detoxify_checkpoint': Detoxify checkpoint file {checkpoint!r} does "
                                f"not exist; pass a local checkpoint file, or drop the key to use the offline "
                                f"default toxicity scorer 'jigsaw-bilstm'")
    if config and not Path(config).expanduser().is_dir():
        raise FileNotFoundError(f"metadata key 'detoxify_config': {config!r} is not a folder (it must hold the "
                                f"transformers config.json and tokenizer files of the Detoxify checkpoint)")


@functools.lru_cache(maxsize=4)
def toxicity_scorer(name: str, checkpoint: str = "", config: str = ""):
    """A toxicity scorer, loaded once per run (options as strings, empty = not given)."""
    from fairpriv.scorers.toxicity import get_toxicity_scorer  # imports torch: only when used

    check_toxicity_options(name, checkpoint, config)
    if name != "detoxify":
        return get_toxicity_scorer(name)
    return get_toxicity_scorer(name, checkpoint=checkpoint or None, huggingface_config_path=config or None)


@functools.lru_cache(maxsize=2)
def sentiment_scorer(name: str):
    try:
        return get_sentiment_scorer(name)
    except ValueError as exc:
        raise ValueError(f"{exc} (metadata key 'sentiment_scorer')") from None


def scorers_for(doc: dict[str, Any]):
    """(toxicity scorer, sentiment scorer) named by a document's scorer fields."""
    return (toxicity_scorer(doc["toxicity_scorer"], doc.get("detoxify_checkpoint") or "",
                            doc.get("detoxify_config") or ""),
            sentiment_scorer(doc["sentiment_scorer"]))


# --- filters -----------------------------------------------------------------------------------------------------
def score_generations(resps: list[Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filter_fn`` of ``gender_bias_bold``: toxicity and sentiment of every generation."""
    if not docs:
        return []
    toxicity, sentiment = scorers_for(docs[0])
    grouped = [all_texts(r) for r in resps]
    texts = [t for group in grouped for t in group]
    tox, sent = toxicity.score(texts, batch_size=SCORE_BATCH), sentiment.score(texts)
    records = [{"text": t, "toxicity": x, "sentiment": s, "toxicity_scorer": toxicity.name,
                "sentiment_scorer": sentiment.name} for t, x, s in zip(texts, tox, sent, strict=True)]
    return per_instance(records, [len(g) for g in grouped])


def match_occupations(resps: list[Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filter_fn`` of ``gender_bias_occupation``: the first occupation named in every generation."""
    matcher = default_matcher()
    grouped = [all_texts(r) for r in resps]
    records = [{"text": t, "occupation": first_occupation(t, matcher)} for group in grouped for t in group]
    return per_instance(records, [len(g) for g in grouped])


def keep_generations(resps: list[Any], docs: list[dict[str, Any]]) -> list[Any]:
    """``filter_fn`` of ``gender_bias_count``: every continuation, unchanged (lm-eval's default ``take_first``
    would keep only the first of k)."""
    grouped = [list(r) if isinstance(r, (list, tuple)) else [r] for r in resps]
    return per_instance([t for group in grouped for t in group], [len(g) for g in grouped])
