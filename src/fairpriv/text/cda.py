"""Counterfactual data augmentation (CDA): swap gendered words, then add or substitute the swapped copy.

Paper: arXiv 2402.04489 (docs/science.md §2) finds that DP fine-tuning amplifies gender bias and that CDA
counteracts it. Method: every gendered word of a training record is replaced by its counterpart ("He thanked his
aunt" -> "She thanked her uncle"). Two-sided CDA keeps every original record and appends the swapped copy;
one-sided CDA replaces the original by the copy. A mixing ratio decides which share of the gendered records get a
counterfactual.

Swapping (:func:`swap`): the text is split into maximal runs of letters and the text between them. A run is swapped
when it is lowercase, Title-case or UPPER-case and its lowercase form is in the pair table of
:mod:`fairpriv.text.gender_pairs`; the counterpart takes the same case. Everything between runs (whitespace,
punctuation, digits, the "'s" of "man's") is kept as is, and a text without a gendered word comes back unchanged.

"her" and "his" have two counterparts each and are resolved by a small rule-based part-of-speech guess that looks at
the next word (after skipping intensifiers such as "very" and -ly adverbs): "her" becomes "him" (object) before an
end, punctuation, a function word (conjunction, preposition, determiner, pronoun, auxiliary, particle adverb), a
predicative-only adjective ("asleep") or a bare verb ("let her go"), and after a naming verb before a capitalised
name ("called her Maggie"); otherwise it becomes "his" (determiner: "her old car"). "his" becomes "hers" before an
end, punctuation or a function word that cannot follow a determiner ("the book is his."), otherwise "her". Known
misses: ditransitives with a bare noun ("gave her flowers"), object complements ("made her captain") and gerunds
("heard her singing"). The accuracy on the project's labelled set is measured by :func:`her_resolver_accuracy`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fairpriv.files import FileKind, read_jsonl
from fairpriv.hashing import canonical_hash
from fairpriv.text.gender_pairs import GENDER_PAIRS, load_name_pairs, swap_table
from fairpriv.text.group_swap import GROUP_ATTRIBUTES, GroupCDAStats, augment_groups, check_attribute
from fairpriv.text.words import (
    NAMING_VERBS, INTENSIFIERS, LY_NOT_ADVERBS, OBJECT_CONTEXT, STANDALONE_CONTEXT, WORD, _check_options, _check_records,
    _choose, _context, _fields,
)

HER_LABELLED = Path(__file__).with_name("her_labelled.jsonl")


def _names_follow(pieces: list[str], i: int) -> bool:
    """A naming verb before word ``i`` and a capitalised word right after it ("called her Maggie")."""
    before = pieces[i - 2].lower() if i >= 3 and not pieces[i - 1].strip() else ""
    after = pieces[i + 2] if i + 2 < len(pieces) and not pieces[i + 1].strip() else ""
    return before in NAMING_VERBS and after[:1].isupper()


def resolve_her(pieces: list[str], i: int) -> str:
    """"him" (object) or "his" (determiner) for the "her" at odd index ``i`` of ``WORD.split(text)``."""
    following = _context(pieces, i)
    if following == "" or following in OBJECT_CONTEXT or _names_follow(pieces, i):
        return "him"
    return "his"


def resolve_his(pieces: list[str], i: int) -> str:
    """"hers" (standalone pronoun: "the book is his.") or "her" (determiner: "his book")."""
    following = _context(pieces, i)
    return "hers" if following == "" or following in STANDALONE_CONTEXT else "her"


def resolve_her_at(text: str, offset: int) -> str:
    """Resolve the "her" that starts at character ``offset`` of ``text``; ValueError if none starts there."""
    pieces, position = WORD.split(text), 0
    for index, piece in enumerate(pieces):
        if index % 2 and position == offset and piece.lower() == "her":
            return resolve_her(pieces, index)
        position += len(piece)
    raise ValueError(f"no word 'her' starts at character {offset} of {text!r}")


def her_resolver_accuracy(path: str | Path = HER_LABELLED) -> tuple[int, int]:
    """(correct, total) of :func:`resolve_her_at` on a JSON-lines file of {"text", "char_offset", "label"}."""
    rows = read_jsonl(Path(path), FileKind("labelled 'her' file", 'one {"text", "char_offset", "label"} per line'))
    correct = sum(resolve_her_at(r["text"], r["char_offset"]) == r["label"] for r in rows)
    return correct, len(rows)


# --- swapping ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwapResult:
    """A swapped text, the number of words swapped and how each "her" was resolved."""

    text: str
    swapped: int
    her_as_his: int = 0
    her_as_him: int = 0


@lru_cache(maxsize=2)
def _tables(names: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(word table, first-name table); the name table is empty unless ``names``."""
    return swap_table(GENDER_PAIRS), (swap_table(load_name_pairs(), frozenset()) if names else {})


def _match_case(source: str, target: str) -> str:
    if source.isupper() and len(source) > 1:
        return target.upper()
    return target[:1].upper() + target[1:] if source[:1].isupper() else target


def _target(pieces: list[str], i: int, names: bool) -> tuple[str | None, str]:
    """(lowercase counterpart or None, kind) for word ``i``; kind "her_as_his"/"her_as_him" or "word"."""
    word = pieces[i]
    if not (word.islower() or word.isupper() or word.istitle()):
        return None, "word"
    low, (table, name_table) = word.lower(), _tables(names)
    if low == "her":
        target = resolve_her(pieces, i)
        return target, f"her_as_{target}"
    if low == "his":
        return resolve_his(pieces, i), "word"
    named = name_table.get(low) if word.istitle() and not word.isupper() else None
    return table.get(low, named), "word"


def swap_detailed(text: str, names: bool = False) -> SwapResult:
    """:func:`swap` with the "her" resolutions counted; ``text`` is returned as is when nothing is swapped."""
    pieces, out, kinds = WORD.split(text), None, Counter()
    for i in range(1, len(pieces), 2):
        target, kind = _target(pieces, i, names)
        if target is not None:
            out = out or list(pieces)
            out[i] = _match_case(pieces[i], target)
            kinds[kind] += 1
    if out is None:
        return SwapResult(text, 0)
    return SwapResult("".join(out), sum(kinds.values()), kinds["her_as_his"], kinds["her_as_him"])


def swap(text: str, names: bool = False) -> tuple[str, int]:
    """(text with every gendered word swapped, number of words swapped).

    >>> swap("HE said the man's hat was his.")
    ("SHE said the woman's hat was hers.", 3)
    >>> swap("I saw her with her dog.")
    ('I saw him with his dog.', 2)
    """
    result = swap_detailed(text, names)
    return result.text, result.swapped


def swap_rules_version(names: bool = False) -> str:
    """12 hex digits identifying the pair list (with first names if ``names``) and the resolver's word lists."""
    rules = [sorted(OBJECT_CONTEXT), sorted(STANDALONE_CONTEXT), sorted(NAMING_VERBS), sorted(INTENSIFIERS),
             sorted(LY_NOT_ADVERBS)]
    pairs = list(GENDER_PAIRS) + (list(load_name_pairs()) if names else [])
    return canonical_hash({"pairs": [list(p) for p in pairs], "resolver": rules})[:12]


# --- augmenting records ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CDAStats:
    """What :func:`augment` did. ``words_swapped``, ``her_as_his`` and ``her_as_him`` count the counterfactual
    copies that were produced; ``pair_list_version`` is :func:`swap_rules_version` (pair list + resolver lists)."""

    records_in: int
    records_out: int
    gendered: int
    augmented: int
    words_swapped: int
    her_as_his: int
    her_as_him: int
    mode: str
    ratio: float
    seed: int
    pair_list_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _swap_record(record: Mapping[str, Any], fields: tuple[str, ...], names: bool) -> tuple[dict, SwapResult]:
    """(swapped copy, totals over its fields); totals.swapped == 0 means the record is not gendered."""
    results = {f: swap_detailed(record[f], names) for f in fields}
    copy = {**record, **{f: r.text for f, r in results.items()}}
    totals = [sum(getattr(r, k) for r in results.values()) for k in ("swapped", "her_as_his", "her_as_him")]
    return copy, SwapResult("", *totals)


def augment(records: Sequence[Mapping[str, Any]], mode: str = "two-sided", ratio: float = 1.0, seed: int = 0,
            fields: Sequence[str] | None = None, names: bool = False,
            attribute: str = "gender") -> tuple[list[dict], CDAStats | GroupCDAStats]:
    """CDA over ``records``: the augmented list (originals in order, then, two-sided, the counterfactual copies in
    order; one-sided, the chosen originals replaced in place) and its :class:`CDAStats`.

    ``fields`` defaults to ("prompt", "response") when every record has both, else ("text",). A record is gendered
    when swapping changes one of its fields; ``ratio`` of the gendered records, drawn with ``random.Random(seed)``,
    get a counterfactual. Non-gendered records are never duplicated.

    ``attribute="religion"`` or ``"race"`` swaps group terms instead of gender words
    (:func:`fairpriv.text.group_swap.augment_groups`, whose stats are a ``GroupCDAStats``); ``names`` is gender only.
    """
    if attribute != "gender":
        check_attribute(attribute, ("gender", *GROUP_ATTRIBUTES))
        if names:
            raise ValueError(f"names=True swaps first names by sex and applies to attribute='gender' only; got "
                             f"attribute={attribute!r}: drop names")
        return augment_groups(records, attribute, mode=mode, ratio=ratio, seed=seed, fields=fields)
    _check_options(mode, ratio, seed)
    _check_records(records)
    fields = _fields(records, fields)
    swapped = [_swap_record(r, fields, names) for r in records]
    chosen = _choose([i for i, (_, s) in enumerate(swapped) if s.swapped], ratio, seed)
    if mode == "two-sided":
        out = [dict(r) for r in records] + [swapped[i][0] for i in chosen]
    else:
        replace = set(chosen)
        out = [swapped[i][0] if i in replace else dict(r) for i, r in enumerate(records)]
    return out, _stats(records, out, swapped, chosen, mode, ratio, seed, names)


def _stats(records: Sequence, out: list[dict], swapped: list[tuple[dict, SwapResult]], chosen: list[int],
           mode: str, ratio: float, seed: int, names: bool) -> CDAStats:
    """Counts over the input, the output and the counterfactual copies that were produced."""
    totals = [sum(getattr(swapped[i][1], k) for i in chosen) for k in ("swapped", "her_as_his", "her_as_him")]
    gendered = sum(1 for _, s in swapped if s.swapped)
    return CDAStats(len(records), len(out), gendered, len(chosen), *totals, mode=mode, ratio=float(ratio),
                    seed=seed, pair_list_version=swap_rules_version(names))
