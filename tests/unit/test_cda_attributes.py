"""CDA beyond gender (issue 16): religion and race term lists, the multi-group swap, augment_groups, cda_attribute.

Expected outputs are written by hand with a fixed group mapping (``REL`` / ``RACE``); the per-record seeded mapping
is tested separately (derangement, consistency within a record, determinism under the seed)."""

from __future__ import annotations

import doctest
import random
from collections import Counter

import pytest

from fairpriv.artifacts import cache_key
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.cda import CDAConfig
from fairpriv.interventions.training.dp import DPConfig
from fairpriv.interventions.training.sft import SFTConfig
from fairpriv.text import cda, group_swap, group_terms
from fairpriv.text.group_swap import GroupCDAStats, augment_groups, draw_mapping, record_mapping, swap_groups
from fairpriv.text.group_terms import RACE_TERMS, RELIGION_TERMS, TERMS

REL = {"judaism": "christianity", "christianity": "judaism", "islam": "atheism", "atheism": "islam",
       "hinduism": "sikhism", "sikhism": "buddhism", "buddhism": "hinduism"}
RACE = {"African_Americans": "European_Americans", "European_Americans": "Asian_Americans",
        "Asian_Americans": "Hispanic_and_Latino_Americans", "Hispanic_and_Latino_Americans": "African_Americans"}


def test_doctests():
    for module in (group_swap, group_terms):
        assert doctest.testmod(module, raise_on_error=False).failed == 0


# --- the term lists ------------------------------------------------------------------------------------------------
def test_term_lists_have_the_groups_slots_and_sizes_documented():
    assert list(RELIGION_TERMS) == ["judaism", "christianity", "islam", "hinduism", "buddhism", "sikhism", "atheism"]
    assert list(RACE_TERMS) == ["African_Americans", "European_Americans", "Asian_Americans",
                                "Hispanic_and_Latino_Americans"]  # BOLD's race groups, as social_bias names them
    assert group_terms.slot_names("religion") == ("person", "people", "adj", "faith")
    assert group_terms.slot_names("race") == ("adj", "people", "american", "americans")
    assert group_terms.distinct_terms("religion") == 24 and group_terms.distinct_terms("race") == 27
    assert all(len(spelling.split()) == 2 for forms in RACE_TERMS.values() for s in ("american", "americans")
               for spelling in forms[s])


def test_check_terms_refuses_a_term_in_two_groups_and_a_missing_slot():
    with pytest.raises(ValueError, match="'Hindu' is a term of both 'hinduism' and 'sikhism'"):
        group_terms.check_terms({**RELIGION_TERMS, "sikhism": {**RELIGION_TERMS["sikhism"], "adj": ("Sikh", "Hindu")}})
    with pytest.raises(ValueError, match="group 'atheism' has slots"):
        group_terms.check_terms({**RELIGION_TERMS, "atheism": {"person": ("atheist",)}})
    with pytest.raises(ValueError, match="as many words"):
        group_terms.check_terms({**RACE_TERMS, "Asian_Americans": {**RACE_TERMS["Asian_Americans"],
                                                                  "american": ("Asian",)}})


def test_term_list_version_is_short_and_differs_by_attribute():
    version = group_swap.term_list_version("religion")
    assert len(version) == 12 and version == group_swap.term_list_version("religion")
    assert version != group_swap.term_list_version("race")


# --- religion swaps: exact values ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("He became a Christian in 1990.", "He became a Jew in 1990."),           # noun: determiner + preposition
    ("She was a devout Christian.", "She was a devout Jew."),                 # determiner two words back
    ("Christian music is popular.", "Jewish music is popular."),              # adjective before a noun
    ("She is Christian.", "She is Jewish."),                                  # predicative: no determiner
    ("Christian and Muslim leaders met.", "Jewish and atheist leaders met."),  # coordinated: takes "leaders"' form
    ("An atheist and two Christians.", "A Muslim and two Jews."),             # article corrected, plural kept
    ("JEWISH HISTORY", "CHRISTIAN HISTORY"),                                  # upper case
    ("Christians prayed. Many Christians left.", "Jews prayed. Many Jews left."),
    ("Islam and Judaism", "Atheism and Christianity"),                        # sentence start capitalised
    ("They studied Islam and Judaism.", "They studied atheism and Christianity."),  # usual case mid-sentence
    ("They love Islamic art.", "They love atheist art."),                     # a read-only spelling
    ("Atheist groups protested.", "Muslim groups protested."),
    ("the local Atheist Society", "the local Muslim Society"),
    ("The Jews' quarter", "The Christians' quarter"),                         # plural possessive
    ("Buddhism's spread, Hinduism's roots", "Hinduism's spread, Sikhism's roots"),
    ("a Christian-democratic party", "a Jewish-democratic party"),            # hyphen after: adjective
    ("anti-Muslim violence", "anti-atheist violence"),
    ("christian rock", "Jewish rock"),                                        # lower-case source, usual case out
    ("a Sikh and a Hindu", "a Buddhist and a Sikh"),
    ("Jewishness, Christianization, Hindustani, Islamabad, Sikhism", "Jewishness, Christianization, Hindustani, "
                                                                      "Islamabad, Buddhism"),  # word boundaries
])
def test_religion_swap_exact_outputs(text, expected):
    assert swap_groups(text, "religion", REL).text == expected


def test_text_without_terms_is_returned_unchanged():
    text = "The church bells rang at the temple; the rabbi and the imam talked."  # places and clergy: left out
    result = swap_groups(text, "religion", REL)
    assert result.text is text and result.swapped == 0


# --- race swaps: exact values --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected", "kept"), [
    ("Black voters and white people.", "White voters and Asian people.", 0),    # sentence start capitalised
    ("Many Black voters and white people.", "Many white voters and Asian people.", 0),
    ("an African American woman", "a European American woman", 0),             # two-word term, article
    ("An African-American woman", "A European-American woman", 0),             # the hyphen is kept
    ("AFRICAN AMERICANS VOTED", "EUROPEAN AMERICANS VOTED", 0),
    ("the Asian American community", "the Hispanic American community", 0),
    ("a white wall and a black cat", "a white wall and a black cat", 2),       # colours
    ("black-and-white photos", "black-and-white photos", 2),
    ("black and white students", "white and Asian students", 0),               # coordinated with a racial use
    ("Asians and whites", "Hispanics and Asians", 0),                          # plural colour word anchored
    ("The White House and the Black Sea", "The White House and the Black Sea", 2),
    ("an Asian elephant in East Asian forests", "an Asian elephant in East Asian forests", 2),
    ("an Asian man", "a Hispanic man", 0),
    ("Caucasian languages; Caucasian men", "Caucasian languages; Asian men", 1),
    ("a Latina writer and two Hispanics", "a Black writer and two Blacks", 0),
    ("Black Men United", "White Men United", 0),                               # title: target capitalised
    ("Blackburn and Whiteside", "Blackburn and Whiteside", 0),                 # word boundaries
])
def test_race_swap_exact_outputs(text, expected, kept):
    result = swap_groups(text, "race", RACE)
    assert (result.text, result.context_kept) == (expected, kept)


def test_swap_result_counts_pairs_mentions_and_articles():
    result = swap_groups("An atheist met a Jew and an atheist. Christians too.", "religion", REL)
    assert result.text == "A Muslim met a Christian and a Muslim. Jews too."
    assert result.swapped == 4 and result.articles == 2
    assert result.pairs == Counter({"atheism->islam": 2, "judaism->christianity": 1, "christianity->judaism": 1})
    assert result.mentions == Counter({"atheism": 2, "judaism": 1, "christianity": 1})


def test_mentions_lists_surface_group_and_slot():
    assert group_swap.mentions("A Hindu, two Sikhs and Buddhism; Hindu temples", "religion") == [
        ("Hindu", "hinduism", "person"), ("Sikhs", "sikhism", "people"), ("Buddhism", "buddhism", "faith"),
        ("Hindu", "hinduism", "adj")]


# --- the group mapping ---------------------------------------------------------------------------------------------
def test_draw_mapping_is_a_derangement_reaching_every_other_group():
    rng, groups, seen = random.Random(0), list(RELIGION_TERMS), Counter()
    for _ in range(700):
        mapping = draw_mapping(groups, rng)
        assert sorted(mapping.values()) == sorted(groups) and all(a != b for a, b in mapping.items())
        seen.update(mapping.items())
    assert len(seen) == 7 * 6 and min(seen.values()) > 60  # each of 42 pairs about 100 times
    with pytest.raises(ValueError, match="at least two groups"):
        draw_mapping(["islam"], rng)


def test_record_mapping_depends_on_seed_attribute_and_text_only():
    texts = ["The Christians met."]
    assert record_mapping("religion", 0, texts) == record_mapping("religion", 0, list(texts))
    assert len({tuple(record_mapping("religion", s, texts).items()) for s in range(20)}) > 10
    assert set(record_mapping("race", 0, texts)) == set(RACE_TERMS)


def test_one_record_uses_one_mapping_across_mentions_and_fields():
    record = {"prompt": "Were the Christians and the Muslims friends?", "response": " Christians and Muslims were."}
    out, _ = augment_groups([record], "religion", seed=4)
    mapping = record_mapping("religion", 4, [record["prompt"], record["response"]])
    people = {g: RELIGION_TERMS[g]["people"][0] for g in RELIGION_TERMS}
    a, b = people[mapping["christianity"]], people[mapping["islam"]]
    assert a != b  # two groups never merge
    assert out[1] == {"prompt": f"Were the {a} and the {b} friends?", "response": f" {a} and {b} were."}


def test_augment_is_deterministic_under_the_seed_and_independent_of_position():
    records = [{"text": f"Record {i}: the {w} community."} for i, w in
               enumerate(["Jewish", "Christian", "Muslim", "Hindu", "Buddhist", "Sikh", "atheist", "local"])]
    first, stats = augment_groups(records, "religion", seed=7)
    again, stats_again = augment_groups(records, "religion", seed=7)
    assert first == again and stats == stats_again
    other, _ = augment_groups(records, "religion", seed=8)
    assert other[8:] != first[8:]
    reversed_out, _ = augment_groups(records[::-1], "religion", seed=7)
    assert sorted(r["text"] for r in reversed_out[8:]) == sorted(r["text"] for r in first[8:])


# --- modes, ratio and statistics -----------------------------------------------------------------------------------
RECORDS = [
    {"text": "An atheist and a Jew."},            # 2 terms
    {"text": "The sky was white."},               # a colour word, no term
    {"text": "Muslims and Christians, Muslims."},  # 3 terms
    {"text": "Nothing here."},
    {"text": "Hindu temples."},                   # 1 term
]


@pytest.fixture()
def fixed_mapping(monkeypatch):
    monkeypatch.setattr(group_swap, "record_mapping", lambda attribute, seed, texts: dict(REL))


def test_two_sided_appends_copies_and_counts_by_hand(fixed_mapping):
    out, stats = augment_groups(RECORDS, "religion", mode="two-sided", ratio=1.0, seed=0)
    assert out[:5] == RECORDS and [r["text"] for r in out[5:]] == [
        "A Muslim and a Christian.", "Atheists and Jews, atheists.", "Sikh temples."]
    assert isinstance(stats, GroupCDAStats) and stats.to_dict() == {
        "attribute": "religion", "records_in": 5, "records_out": 8, "with_terms": 3, "augmented": 3,
        "terms_swapped": 6,
        "swaps_by_pair": {"atheism->islam": 1, "christianity->judaism": 1, "hinduism->sikhism": 1,
                          "islam->atheism": 2, "judaism->christianity": 1},
        "mentions_by_group": {"atheism": 1, "christianity": 1, "hinduism": 1, "islam": 2, "judaism": 1},
        "context_words_kept": 0, "articles_changed": 1, "mode": "two-sided", "ratio": 1.0, "seed": 0,
        "term_list_version": group_swap.term_list_version("religion")}


def test_one_sided_replaces_in_place_and_ratio_chooses_the_seeded_share(fixed_mapping):
    out, stats = augment_groups(RECORDS, "religion", mode="one-sided", ratio=0.5, seed=3)
    chosen = sorted(random.Random(3).sample([0, 2, 4], 2))  # round-half-up(0.5 * 3) = 2 of the 3 with terms
    assert (stats.records_out, stats.with_terms, stats.augmented) == (5, 3, 2)
    expected = {0: "A Muslim and a Christian.", 2: "Atheists and Jews, atheists.", 4: "Sikh temples."}
    assert [r["text"] for r in out] == [expected[i] if i in chosen else r["text"] for i, r in enumerate(RECORDS)]
    assert stats.terms_swapped == sum({0: 2, 2: 3, 4: 1}[i] for i in chosen)
    assert stats.mentions_by_group == {"atheism": 1, "christianity": 1, "hinduism": 1, "islam": 2, "judaism": 1}


def test_race_stats_count_context_words_kept(fixed_mapping, monkeypatch):
    monkeypatch.setattr(group_swap, "record_mapping", lambda attribute, seed, texts: dict(RACE))
    records = [{"text": "White people and a black cat."}, {"text": "A white wall."}, {"text": "an Asian woman"}]
    out, stats = augment_groups(records, "race", seed=0)
    assert [r["text"] for r in out[3:]] == ["Asian people and a black cat.", "a Hispanic woman"]
    assert (stats.with_terms, stats.terms_swapped, stats.context_words_kept, stats.articles_changed) == (2, 2, 2, 1)
    assert stats.swaps_by_pair == {"Asian_Americans->Hispanic_and_Latino_Americans": 1,
                                   "European_Americans->Asian_Americans": 1}


def test_augment_dispatches_on_attribute_and_keeps_gender_as_it_was():
    records = [{"text": "He thanked his aunt."}, {"text": "The Jews met."}]
    assert cda.augment(records) == cda.augment(records, attribute="gender")
    assert type(cda.augment(records)[1]) is cda.CDAStats
    out, stats = cda.augment(records, attribute="religion", seed=1)
    assert (out, stats) == augment_groups(records, "religion", seed=1)
    with pytest.raises(ValueError, match="applies to attribute='gender' only"):
        cda.augment(records, attribute="race", names=True)
    with pytest.raises(ValueError, match="attribute must be one of gender, religion, race; got 'racee'. "
                                         "Did you mean 'race'?"):
        cda.augment(records, attribute="racee")


def test_bad_options_are_refused_as_for_gender():
    with pytest.raises(ValueError, match="mode must be one of"):
        augment_groups(RECORDS, "religion", mode="both")
    with pytest.raises(ValueError, match="ratio must be a number in"):
        augment_groups(RECORDS, "religion", ratio=2)
    with pytest.raises(ValueError, match="records is empty"):
        augment_groups([], "race")


# --- the config key ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [CDAConfig, SFTConfig, DPConfig])
def test_unknown_cda_attribute_is_a_config_error_with_did_you_mean(config):
    with pytest.raises(ConfigError, match=r"'cda_attribute' must be one of gender, religion, race; got 'religon'\. "
                                          r"Did you mean 'religion'\?"):
        config.from_args({"cda_attribute": "religon", "cda_ratio": "1"})


def test_cda_attribute_without_cda_ratio_is_refused_and_the_default_is_gender():
    with pytest.raises(ConfigError, match="'cda_attribute' only applies with counterfactual augmentation"):
        SFTConfig.from_args({"cda_attribute": "race"})
    assert SFTConfig().cda_attribute == CDAConfig().cda_attribute == "gender"
    assert CDAConfig.from_args({"cda_attribute": "race"}).cda_attribute == "race"


def test_a_non_default_attribute_gets_its_own_cache_key():
    keys = {cache_key("cda", "1", CDAConfig(cda_attribute=a).to_dict(), {}) for a in ("gender", "religion", "race")}
    assert len(keys) == 3


def test_every_attribute_has_a_term_list():
    from fairpriv.interventions.training.loop import CDA_ATTRIBUTES

    assert CDA_ATTRIBUTES == ("gender", *TERMS)
