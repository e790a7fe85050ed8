"""Counterfactual data augmentation beyond gender: swap religion or race group terms between several groups.

The term lists are :mod:`fairpriv.text.group_terms`. Records are augmented as in :func:`fairpriv.text.cda.augment`
(two-sided: the originals, then one counterfactual copy per chosen record; one-sided: the chosen records replaced;
``ratio`` of the records with a term are chosen with ``random.Random(seed)``); only the swap differs.

**Which group a term goes to.** Each record gets its own mapping of the groups onto themselves: a derangement (a
permutation in which no group stays put) drawn uniformly with ``random.Random`` seeded by the CDA seed, the
attribute and the hash of the record's text fields. Every mention of a group in that record (all its fields) goes to
the same group, two different groups never merge ("Christians and Muslims" -> "Hindus and Jews", never "Jews and
Jews"), each group goes to each other group equally often over many records, and the result depends only on the seed
and the record, not on its position in the list.

**Form and case.** A term is replaced by the *same form* (slot) of the target group: person noun, plural, adjective,
faith name, or for race the two-word "X American(s)" terms (matched with a space or a hyphen, which is kept).
Religion words that are both a person noun and an adjective ("Christian", "Muslim", "Hindu", ...) matter only for
judaism ("Jew" / "Jewish"); they are read as the noun when a determiner comes one or two words before ("a",
"the", "every", ...: "a devout Christian") and an end, punctuation or a function word (conjunction, preposition,
auxiliary, determiner, pronoun, particle adverb) comes after ("a Christian who", "an atheist."), and as the
adjective otherwise ("Christian music", "is Christian.", "Christian-owned"); a term joined by "and"/"or"/","/"/" to a
following term takes that term's form ("Christian and Muslim leaders"). The written case is the target's usual case
("Jewish", "atheist", "Black", "white"), capitalised when the source was capitalised at a sentence start or where its
own usual form is lower-case ("Atheist groups"), upper-case when the source was upper-case. "a"/"an" right before a
swapped term is corrected ("an atheist" -> "a Sikh").

**Context words.** "black", "white", "blacks", "whites" (colours) and "Asian", "Caucasian" (mostly geographic on
their own), in any case, are race terms only when directly followed by a word for people
(``group_terms.PERSON_NOUNS``: "white people", "Black voters", "Asian students") or joined by "and"/"or"/","/"/"
to a race term ("Asians and whites", "black and white students"); otherwise they are left alone and counted
(``context_words_kept``). "black-and-white photos", "White House", "the Black Sea", "East Asian model" are not
swapped. "Asians", "Caucasians" and the two-word terms ("Asian American") are always race terms.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fairpriv.hashing import canonical_hash
from fairpriv.names import did_you_mean
from fairpriv.text import words
from fairpriv.text.group_terms import CONTEXT_WORDS, PERSON_NOUNS, TERMS, term_table

RULES_VERSION = "1"
GROUP_ATTRIBUTES = tuple(TERMS)
NOUN_CONTEXT = (words.CONJUNCTIONS | words.PREPOSITIONS | words.AUXILIARIES | words.ADVERBS | words.PRONOUNS
                | words.DETERMINERS)
NOUN_DETERMINERS = frozenset("a an the one every each another no any this that".split())
COORDINATION = re.compile(r"[ \t]*(?:[,/&][ \t]*)?(?:(?:and|or|nor)[ \t]+)?", re.IGNORECASE)
SENTENCE_END = ".!?"


def check_attribute(attribute: object, allowed: Sequence[str] = GROUP_ATTRIBUTES) -> str:
    """``attribute`` if it is one of ``allowed``; ValueError with a did-you-mean otherwise."""
    if attribute not in allowed:
        raise ValueError(f"attribute must be one of {', '.join(allowed)}; got {attribute!r}."
                         f"{did_you_mean(attribute, allowed)}")
    return str(attribute)


# --- finding and resolving terms ---------------------------------------------------------------------------------
@dataclass
class Mention:
    """A term at word indices ``start``..``end`` of ``WORD.split(text)`` (equal unless two words)."""

    start: int
    end: int
    group: str
    slots: tuple[tuple[str, str], ...]  # (slot, listed spelling) the word can fill
    contextual: bool  # black, white, blacks, whites, Asian, Caucasian: a race term only in a racial context
    slot: str = ""
    spelling: str = ""
    swap: bool = True

    def surface(self, pieces: list[str]) -> str:
        return "".join(pieces[self.start:self.end + 1])


def _case_ok(word: str) -> bool:
    return word.islower() or word.isupper() or word.istitle()


def find_mentions(pieces: list[str], attribute: str) -> list[Mention]:
    """Every term of ``attribute`` in split text, left to right; two-word terms before one-word terms."""
    table, found, i = term_table(attribute), [], 1
    while i < len(pieces):
        word = pieces[i]
        if _case_ok(word):
            if i + 2 < len(pieces) and pieces[i + 1] in (" ", "-") and _case_ok(pieces[i + 2]):
                pair = (word.lower(), pieces[i + 2].lower())
                if pair in table:
                    found.append(Mention(i, i + 2, *table[pair], contextual=False))
                    i += 4
                    continue
            if word.lower() in table:
                found.append(Mention(i, i, *table[word.lower()], contextual=word.lower() in CONTEXT_WORDS))
        i += 2
    return found


def _coordinated(pieces: list[str], left: Mention, right: Mention) -> bool:
    """Two mentions joined by ",", "/", "&", "and", "or" or "nor" (on one line): "Christian and Muslim"."""
    between = "".join(pieces[left.end + 1:right.start])
    return bool(between.strip()) and COORDINATION.fullmatch(between) is not None


def _next_word(pieces: list[str], i: int) -> str:
    """The word right after word ``i`` (one run of spaces or tabs), lowercase; '' otherwise."""
    return _next_word_raw(pieces, i).lower()


def _determined(pieces: list[str], i: int) -> bool:
    """A determiner ("a", "the", "every", ...) up to three words before word ``i``, with only spaces or hyphens
    between ("a Christian", "a devout Christian", "a non-denominational Muslim")."""
    for _ in range(3):
        if i < 3 or pieces[i - 1].strip(" \t-") or not pieces[i - 1]:
            return False
        i -= 2
        if pieces[i].lower() in NOUN_DETERMINERS:
            return True
    return False


def _noun_or_adjective(pieces: list[str], mention: Mention) -> str:
    """"person" or "adj" for a word that can be both ("Christian"): the noun after a determiner and before an end,
    punctuation or a function word ("a Christian.", "a devout Christian who"), else the adjective ("Christian
    music", "is Christian.", "Buddhist, humanist and Marxist views")."""
    if pieces[mention.end + 1].startswith("-"):
        return "adj"  # "Christian-democratic", "Muslim-majority"
    following = words._context(pieces, mention.end)
    nounlike = following == "" or following in NOUN_CONTEXT
    return "person" if nounlike and _determined(pieces, mention.start) else "adj"


def resolve(pieces: list[str], attribute: str) -> list[Mention]:
    """:func:`find_mentions` with each mention's slot and spelling set, and context words (colour words, "Asian",
    "Caucasian") not in a racial context marked ``swap=False``."""
    mentions = find_mentions(pieces, attribute)
    links = [_coordinated(pieces, a, b) for a, b in zip(mentions, mentions[1:])]
    for k in range(len(mentions) - 1, -1, -1):  # right to left: a coordinated term takes the next one's form
        m = mentions[k]
        options = dict(m.slots)
        if len(options) == 1:
            m.slot = next(iter(options))
        elif k + 1 < len(mentions) and links[k] and mentions[k + 1].slot in options:
            m.slot = mentions[k + 1].slot
        else:
            m.slot = _noun_or_adjective(pieces, m)
        m.spelling = options[m.slot]
    for m in mentions:
        m.swap = not m.contextual or _next_word(pieces, m.end) in PERSON_NOUNS
    changed = True
    while changed:  # a context word joined to a race term is a race term ("Asians and whites")
        changed = False
        for k, linked in enumerate(links):
            a, b = mentions[k], mentions[k + 1]
            if linked and a.swap != b.swap:
                a.swap = b.swap = changed = True
    return mentions


# --- writing the swap --------------------------------------------------------------------------------------------
def _sentence_start(pieces: list[str], i: int) -> bool:
    before = "".join(pieces[:i])
    stripped = before.rstrip()
    if not stripped or "\n" in before[len(stripped):]:
        return True
    stripped = stripped.rstrip("\"'“‘([")
    return not stripped or stripped[-1] in SENTENCE_END


def match_case(source: str, usual: str, target: str, capitalise: bool) -> str:
    """``target`` in its usual case, upper-case for an upper-case source, capitalised when the source is
    capitalised where its usual form is not (``capitalise``: a sentence start or title-case words around it; or a
    source whose usual form is lower-case, "Atheist groups")."""
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source[:1].isupper() and (capitalise or usual[:1].islower()):
        return target[:1].upper() + target[1:]
    return target


def _title_context(pieces: list[str], mention: Mention) -> bool:
    """A capitalised word next to the term (one space), other than "American(s)": a name or title such as "Black
    Men United" or "a White Woman of the Seneca", where the target is capitalised too."""
    words = [w for w in (_next_word_raw(pieces, mention.end), _previous_word_raw(pieces, mention.start)) if w]
    return any(w[:1].isupper() and w.lower() not in ("american", "americans") and len(w) > 1 for w in words)


def _next_word_raw(pieces: list[str], i: int) -> str:
    gap = pieces[i + 1] if i + 2 < len(pieces) else ""
    return pieces[i + 2] if gap and not gap.strip(" \t") else ""


def _previous_word_raw(pieces: list[str], i: int) -> str:
    gap = pieces[i - 1] if i >= 3 else ""
    return pieces[i - 2] if gap and not gap.strip(" \t") and not _sentence_start(pieces, i - 2) else ""


def _vowel_sound(word: str) -> bool:
    low = word.lower()
    return low[:1] in tuple("aeiou") and not low.startswith(("eu", "uni", "use", "usu"))


def _fix_article(out: list[str], pieces: list[str], i: int, first_word: str) -> bool:
    """Set the "a"/"an" right before word ``i`` for ``first_word``; True if it changed."""
    if i < 3 or not pieces[i - 1] or pieces[i - 1].strip(" \t") or pieces[i - 2].lower() not in ("a", "an"):
        return False
    article = pieces[i - 2]
    wanted = "an" if _vowel_sound(first_word) else "a"
    if article.lower() == wanted:
        return False
    if article.isupper() and len(article) > 1:
        out[i - 2] = wanted.upper()
    else:
        out[i - 2] = wanted.capitalize() if article[:1].isupper() else wanted
    return True


@dataclass(frozen=True)
class GroupSwapResult:
    """A swapped text and what was done: ``pairs`` counts swaps by "source->target" group, ``mentions`` the swapped
    terms by their (source) group, ``context_kept`` the context words left alone (not in a racial context),
    ``articles`` the "a"/"an" corrected."""

    text: str
    swapped: int
    pairs: Counter = field(default_factory=Counter)
    mentions: Counter = field(default_factory=Counter)
    context_kept: int = 0
    articles: int = 0


def swap_groups(text: str, attribute: str, mapping: Mapping[str, str]) -> GroupSwapResult:
    """``text`` with every term of ``attribute`` replaced by the same form of ``mapping[group]``.

    >>> swap_groups("An atheist and two Christians.", "religion", {"atheism": "sikhism", "christianity": "islam"}).text
    'A Sikh and two Muslims.'
    """
    check_attribute(attribute)
    pieces = words.WORD.split(text)
    mentions = resolve(pieces, attribute)
    swapped = [m for m in mentions if m.swap]
    if not swapped:
        return GroupSwapResult(text, 0, context_kept=len(mentions))
    out, pairs, articles = list(pieces), Counter(), 0
    terms = TERMS[attribute]
    for m in swapped:
        target_group = mapping[m.group]
        target = terms[target_group][m.slot][0].split()
        sources = [pieces[m.start]] + ([pieces[m.end]] if m.end != m.start else [])
        start = _sentence_start(pieces, m.start) or _title_context(pieces, m)
        new = [match_case(s, u, t, start and j == 0)
               for j, (s, u, t) in enumerate(zip(sources, m.spelling.split(), target))]
        out[m.start], out[m.end] = new[0], new[-1]
        articles += _fix_article(out, pieces, m.start, new[0])
        pairs[f"{m.group}->{target_group}"] += 1
    return GroupSwapResult("".join(out), len(swapped), pairs, Counter(m.group for m in swapped),
                           len(mentions) - len(swapped), articles)


def mentions(text: str, attribute: str) -> list[tuple[str, str, str]]:
    """(surface text, group, slot) of each term that would be swapped, left to right.

    >>> mentions("Black and white students; a white wall", "race")
    [('Black', 'African_Americans', 'adj'), ('white', 'European_Americans', 'adj')]
    """
    check_attribute(attribute)
    pieces = words.WORD.split(text)
    return [(m.surface(pieces), m.group, m.slot) for m in resolve(pieces, attribute) if m.swap]


# --- the group mapping -------------------------------------------------------------------------------------------
def draw_mapping(groups: Sequence[str], rng: random.Random) -> dict[str, str]:
    """A derangement of ``groups`` (no group maps to itself), uniform over derangements (rejection sampling)."""
    if len(groups) < 2:
        raise ValueError(f"need at least two groups to swap between, got {list(groups)}")
    while True:
        targets = list(groups)
        rng.shuffle(targets)
        if all(a != b for a, b in zip(groups, targets)):
            return dict(zip(groups, targets))


def record_mapping(attribute: str, seed: int, texts: Sequence[str]) -> dict[str, str]:
    """The mapping for one record: :func:`draw_mapping` seeded by the seed, the attribute and the record's texts."""
    key = canonical_hash(["fairpriv-cda-groups", attribute, seed, list(texts)])
    return draw_mapping(list(TERMS[attribute]), random.Random(key))


def swap_record_text(text: str, attribute: str, seed: int = 0) -> GroupSwapResult:
    """Swap one text as :func:`augment_groups` would swap a record whose only field is ``text``."""
    return swap_groups(text, attribute, record_mapping(check_attribute(attribute), seed, [text]))


# --- augmenting records ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupCDAStats:
    """What :func:`augment_groups` did. ``with_terms``: input records with at least one term to swap (context
    words left alone do not count); ``terms_swapped``, ``swaps_by_pair`` ("christianity->islam": n) and
    ``articles_changed`` count the counterfactual copies produced; ``mentions_by_group`` (swappable terms by group)
    and ``context_words_kept`` count the input records."""

    attribute: str
    records_in: int
    records_out: int
    with_terms: int
    augmented: int
    terms_swapped: int
    swaps_by_pair: dict[str, int]
    mentions_by_group: dict[str, int]
    context_words_kept: int
    articles_changed: int
    mode: str
    ratio: float
    seed: int
    term_list_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _swap_record(record: Mapping[str, Any], fields: tuple[str, ...], attribute: str,
                 seed: int) -> tuple[dict, GroupSwapResult]:
    mapping = record_mapping(attribute, seed, [record[f] for f in fields])
    results = {f: swap_groups(record[f], attribute, mapping) for f in fields}
    copy = {**record, **{f: r.text for f, r in results.items()}}
    total = GroupSwapResult("", sum(r.swapped for r in results.values()),
                            sum((r.pairs for r in results.values()), Counter()),
                            sum((r.mentions for r in results.values()), Counter()),
                            sum(r.context_kept for r in results.values()), sum(r.articles for r in results.values()))
    return copy, total


def augment_groups(records: Sequence[Mapping[str, Any]], attribute: str, mode: str = "two-sided",
                   ratio: float = 1.0, seed: int = 0,
                   fields: Sequence[str] | None = None) -> tuple[list[dict], GroupCDAStats]:
    """CDA over ``records`` for ``attribute`` ("religion" or "race"): as :func:`fairpriv.text.cda.augment`, with a
    record counted as having a term when swapping changes one of its fields."""
    check_attribute(attribute)
    words._check_options(mode, ratio, seed)
    words._check_records(records)
    fields = words._fields(records, fields)
    swapped = [_swap_record(r, fields, attribute, seed) for r in records]
    chosen = words._choose([i for i, (_, s) in enumerate(swapped) if s.swapped], ratio, seed)
    if mode == "two-sided":
        out = [dict(r) for r in records] + [swapped[i][0] for i in chosen]
    else:
        replace = set(chosen)
        out = [swapped[i][0] if i in replace else dict(r) for i, r in enumerate(records)]
    pairs = sum((swapped[i][1].pairs for i in chosen), Counter())
    found = sum((s.mentions for _, s in swapped), Counter())
    stats = GroupCDAStats(
        attribute=attribute, records_in=len(records), records_out=len(out),
        with_terms=sum(1 for _, s in swapped if s.swapped), augmented=len(chosen),
        terms_swapped=sum(swapped[i][1].swapped for i in chosen), swaps_by_pair=dict(sorted(pairs.items())),
        mentions_by_group=dict(sorted(found.items())), context_words_kept=sum(s.context_kept for _, s in swapped),
        articles_changed=sum(swapped[i][1].articles for i in chosen), mode=mode, ratio=float(ratio), seed=seed,
        term_list_version=term_list_version(attribute))
    return out, stats


def term_list_version(attribute: str) -> str:
    """12 hex digits identifying the term list of ``attribute`` and the context lists the swap uses."""
    return canonical_hash({"terms": TERMS[attribute], "context_words": sorted(CONTEXT_WORDS),
                           "person_nouns": sorted(PERSON_NOUNS), "rules": RULES_VERSION,
                           "function_words": sorted(NOUN_CONTEXT),
                           "determiners": sorted(NOUN_DETERMINERS)}
                          )[:12]
