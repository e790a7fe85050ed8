"""What the counterfactual swaps share: the word pattern, the closed word classes that tell a determiner "her" from
an object "her" (and a group noun from an adjective), and the checks and draws of an augmentation run
(:mod:`fairpriv.text.cda` for gender, :mod:`fairpriv.text.group_swap` for religion and race)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any


MODES = ("two-sided", "one-sided")


FIELD_SETS = (("prompt", "response"), ("text",))


WORD = re.compile(r"([^\W\d_]+)")


CONJUNCTIONS = frozenset(
    "and or but nor yet because if when whenever while whereas than as until till before after since though "
    "although unless whether once that where".split())


PREPOSITIONS = frozenset(
    "to for with at in on by from of about into onto over under up down out off away back around round through "
    "across along behind beside besides near past toward towards without within during like against among "
    "between beyond upon via per despite except inside outside above below".split())


DETERMINERS = frozenset(
    "the a an this these those some any each no my your our their its his her all both either neither another "
    "much enough such what which whose".split())


PRONOUNS = frozenset(
    "i you he she it we they me him us them myself yourself himself herself itself ourselves themselves someone "
    "somebody something anyone anybody anything everyone everybody everything nobody nothing who whom mine yours "
    "ours theirs hers".split())


AUXILIARIES = frozenset("is am are was were be been being has have had do does did will would shall should can "
                        "could may might must".split())


ADVERBS = frozenset("not now then there here today tonight yesterday tomorrow home twice already anyway alone "
                    "instead indoors outdoors abroad upstairs downstairs everywhere somewhere anywhere nowhere ever "
                    "never always sometimes often still again well".split())


PREDICATIVE = frozenset("asleep awake alive afraid aware ashamed alike aboard afloat".split())


BARE_VERBS = frozenset("go come know see say tell think speak eat sit become understand realise realize forget "
                       "remember believe decide choose explain feel get make give bring find let carry agree wonder "
                       "sing hear try want buy meet learn lose".split())


NAMING_VERBS = frozenset("call called calls calling name named names naming nickname nicknamed christen christened "
                         "dub dubbed".split())


INTENSIFIERS = frozenset("very really so too more most less least quite rather only just even".split())


LY_NOT_ADVERBS = frozenset(
    "family early lovely elderly daily weekly monthly yearly hourly nightly friendly unfriendly silly jelly belly "
    "bully lonely lively likely unlikely costly curly deadly orderly italy rally tally assembly supply reply homely "
    "manly womanly motherly fatherly sisterly brotherly scholarly lowly surly burly chilly frilly hilly woolly "
    "wobbly bubbly cuddly smelly sickly stately timely untimely leisurely heavenly worldly earthly ghostly godly "
    "beastly cowardly ungainly jolly folly emily sally molly kelly polly holly billy anomaly monopoly melancholy "
    "butterfly".split())


OBJECT_CONTEXT = (CONJUNCTIONS | PREPOSITIONS | DETERMINERS | PRONOUNS | AUXILIARIES | ADVERBS | PREDICATIVE
                  | BARE_VERBS)


STANDALONE_CONTEXT = CONJUNCTIONS | PREPOSITIONS | AUXILIARIES | ADVERBS | PREDICATIVE


# --- "her" / "his" resolution on split text (words at odd indices) -----------------------------------------------
def _after(pieces: list[str], i: int) -> str:
    """What follows word ``i``: the next word in lowercase; '' at an end, a line break or punctuation; '#' before
    a number; '-' before a hyphenated compound ("her long-term goal")."""
    gap = pieces[i + 1]
    if gap.strip() or "\n" in gap or i + 2 >= len(pieces):
        return "#" if gap.strip()[:1].isdigit() else ""
    if pieces[i + 3] == "-" and i + 4 < len(pieces):
        return "-"
    return pieces[i + 2].lower()


def _is_modifier(word: str) -> bool:
    """Intensifiers and -ly adverbs: skipped, because the word after them decides ("her newly built house")."""
    return word in INTENSIFIERS or (len(word) >= 5 and word.endswith("ly") and word not in LY_NOT_ADVERBS)


def _context(pieces: list[str], i: int) -> str:
    """The first informative token after word ``i`` (see :func:`_after`), modifiers skipped."""
    following = _after(pieces, i)
    while _is_modifier(following):
        i += 2
        following = _after(pieces, i)
    return following


def _check_options(mode: str, ratio: float, seed: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}: use 'two-sided' to keep the originals "
                         "and add swapped copies, 'one-sided' to replace them")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be a number in [0, 1] (the share of gendered records that get a "
                         f"counterfactual), got {ratio!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")


def _check_records(records: Sequence[Mapping[str, Any]]) -> None:
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise ValueError(f"records must be a list of dicts, got {type(records).__name__}")
    if not records:
        raise ValueError("records is empty: pass at least one record (a dict with 'prompt'/'response' or 'text')")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"record {index} is a {type(record).__name__}, not a dict: pass a list of dicts")


def _fields(records: Sequence[Mapping[str, Any]], fields: Sequence[str] | None) -> tuple[str, ...]:
    """The text fields to swap: the given ones, else the first of ``FIELD_SETS`` that every record has."""
    fields = (fields,) if isinstance(fields, str) else fields
    candidates = [tuple(fields)] if fields is not None else list(FIELD_SETS)
    for candidate in candidates:
        if candidate and all(all(isinstance(r.get(f), str) for f in candidate) for r in records):
            return candidate
    bad = next((i for i, r in enumerate(records) if not all(isinstance(r.get(f), str) for f in candidates[-1])), 0)
    wanted = " or ".join(repr(list(c)) for c in candidates)
    raise ValueError(f"record {bad} (keys {sorted(map(str, records[bad]))}) lacks string fields {wanted}: "
                     "give every record those fields, or name its text fields with fields=(...)")


def _choose(gendered: list[int], ratio: float, seed: int) -> list[int]:
    """round-half-up(ratio * len(gendered)) indices drawn with ``random.Random(seed)``, in input order."""
    count = math.floor(ratio * len(gendered) + 0.5)
    return sorted(random.Random(seed).sample(gendered, count))
