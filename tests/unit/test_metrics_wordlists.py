"""Gendered word lists and Winogender occupation statistics: pure parsing on literals, then the real asset."""

from __future__ import annotations

import doctest

import pytest

from fairpriv.lexicon import wordlists as wl


def test_doctests():
    assert doctest.testmod(wl, raise_on_error=False).failed == 0


# --- pure parsing --------------------------------------------------------------------------------------------------
def test_parse_pairs_normalises_crlf_spaces_case_and_periods():
    text = "# comment\r\nActor \t actress \r\n\r\nMr.\tMrs.\r\nboy\tgirl \r\nboy\tgirl\r\ntailors\tseamstress'\r\n"
    assert wl.parse_pairs(text) == [("actor", "actress"), ("mr", "mrs"), ("boy", "girl"),
                                    ("tailors", "seamstresses")]


@pytest.mark.parametrize("line", ["he she", "he\tshe\tthey", "he\t  "])
def test_parse_pairs_rejects_malformed_lines(line):
    with pytest.raises(ValueError, match="line 2"):
        wl.parse_pairs(f"boy\tgirl\n{line}\n")


def test_orient_flips_only_listed_reversed_lines():
    pairs = [("mommy", "daddy"), ("ms", "mr"), ("mr", "mrs"), ("daddy", "mommy")]
    assert wl.orient(pairs) == [("daddy", "mommy"), ("mr", "ms"), ("mr", "mrs")]
    assert wl.orient([("she", "he")], reversed_pairs=frozenset()) == [("she", "he")]


def test_word_sets_refuse_a_word_on_both_sides_and_apply_exclusions():
    with pytest.raises(ValueError, match=r"\['mr'\]"):
        wl.word_sets([("mr", "mrs"), ("ms", "mr")])
    male, female = wl.word_sets([("actor", "actress"), ("he", "she")], exclude=["Actor"])
    assert male == {"he"} and female == {"actress", "she"}


def test_parse_occupation_stats():
    text = "occupation\tbergsma_pct_female\tbls_pct_female\tbls_year\r\nNurse\t80.0\t89.58\t2015\r\n" \
           "plumber\t1.0\t0.7\t2015\r\n"
    assert wl.parse_occupation_stats(text) == {"nurse": 89.58, "plumber": 0.7}
    assert wl.parse_occupation_stats(text, column="bergsma_pct_female")["nurse"] == 80.0
    with pytest.raises(ValueError, match="columns"):
        wl.parse_occupation_stats(text, column="missing")
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        wl.parse_occupation_stats("occupation\tbls_pct_female\nnurse\t0.9\nclerk\t120\n")


def test_loaders_read_a_given_folder(tmp_path):
    (tmp_path / "pairs.txt").write_text("he\tshe\r\nactor\tactress\r\nmommy\tdaddy\r\ndaddy\tmommy\r\n")
    male, female = wl.gender_word_sets(tmp_path, "pairs.txt")
    assert male == {"he", "daddy"} and female == {"she", "actress", "mommy"}
    assert wl.load_gendered_pairs(tmp_path, "pairs.txt")[-1] == ("daddy", "mommy")


# --- the real asset ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root():
    from fairpriv.assets import AssetError

    try:
        return wl.asset_root()
    except AssetError as exc:  # not fetched on this machine
        pytest.skip(f"asset {wl.ASSET} unavailable: {exc}")


def test_asset_pairs_are_male_first_and_disjoint(root):
    pairs = wl.load_gendered_pairs(root)
    assert len(pairs) == 130 and len(set(pairs)) == len(pairs)
    for pair in [("he", "she"), ("him", "her"), ("his", "her"), ("mr", "ms"), ("mr", "mrs"), ("daddy", "mommy"),
                 ("prince", "princess"), ("man", "woman"), ("sir", "ma'am"), ("god", "goddess")]:
        assert pair in pairs
    male, female = wl.gender_word_sets(root)
    assert not male & female
    assert {"he", "him", "his", "himself", "man", "men", "mr", "boys"} <= male
    assert {"she", "her", "herself", "woman", "women", "mrs", "ms", "girls", "mommy", "princess"} <= female
    assert not wl.NEUTRAL_IN_USE & male and {"actress", "hostess", "goddess"} <= female


def test_every_repair_is_needed_by_the_asset(root):
    raw = set()
    for relative in (wl.PAIRS_FILE, f"{wl.DATASETS}/GenderSwaps/extra_gendered_words.txt"):
        raw |= set(wl.parse_pairs(wl.read_text(relative, root)))
    assert wl.KNOWN_REVERSED <= raw                                       # the list is not stale
    with pytest.raises(ValueError, match="both male and female"):
        wl.word_sets(wl.parse_pairs(wl.read_text(wl.PAIRS_FILE, root)))  # without orient() the sets collide
    text = wl.read_text(wl.PAIRS_FILE, root).lower()
    assert all(wrong in text for wrong in wl.SPELLING)                  # each misspelling occurs in the file
    words = {w for pair in raw for w in pair}
    assert not set(wl.SPELLING) & words and set(wl.SPELLING.values()) <= words
    male, female = wl.gender_word_sets(root, f"{wl.DATASETS}/GenderSwaps/extra_gendered_words.txt")
    assert "cameramen" in male and "camerawomen" in female


def test_asset_occupation_stats(root):
    shares = wl.load_occupation_stats(root)
    assert len(shares) == 60
    assert shares["nurse"] == 89.58 and shares["plumber"] == 0.7 and shares["secretary"] == 94.6
    assert all(0 <= v <= 100 for v in shares.values())
