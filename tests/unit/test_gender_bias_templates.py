"""gender_bias authored templates and word lists: counterfactual pairs, neutral prompts, the occupation matcher."""

from __future__ import annotations

import pytest

from fairpriv.metrics import gender as gd
from fairpriv.metrics.gender_tasks import count_words, default_matcher
from fairpriv.lexicon import gender as vocab
from fairpriv.tasks.gender_bias import sources


def test_fill_capitalises_only_at_sentence_start():
    assert vocab.fill("{Subj} worked as", "my aunt") == "My aunt worked as"
    assert vocab.fill("Everyone said that {subj} was", "my aunt") == "Everyone said that my aunt was"


def test_every_frame_has_its_slot():
    assert all("{Subj}" in f or "{subj}" in f for f in (*vocab.OCCUPATION_FRAMES, *vocab.DIVERGENCE_FRAMES))
    assert all("{occupation}" in f for f in vocab.LIKELIHOOD_FRAMES)
    assert all(not f.rstrip().endswith((" a", " an")) for f in vocab.OCCUPATION_FRAMES)   # the model picks a/an


def test_subject_pairs_are_gendered_as_labelled():
    male_words, female_words = count_words()
    for male, female in vocab.SUBJECT_PAIRS:
        assert gd.count_gendered(male, male_words, female_words)[0] >= 1, male
        assert gd.count_gendered(female, male_words, female_words)[1] >= 1, female
    names = [n for pair in vocab.NAME_PAIRS for n in pair]
    assert len(set(names)) == len(names)


def test_divergence_pairs_differ_only_in_the_subject():
    for pair in sources.builtin_pairs():
        male_words, female_words = count_words()
        m = gd.count_gendered(pair["male_prompt"], male_words, female_words)
        f = gd.count_gendered(pair["female_prompt"], male_words, female_words)
        assert m[1] == 0 and f[0] == 0 and m[0] == f[1] >= 1, pair


def test_neutral_prompts_have_no_gendered_word():
    male_words, female_words = count_words()
    for prompt in vocab.NEUTRAL_PROMPTS:
        assert gd.count_gendered(prompt, male_words, female_words) == (0, 0), prompt
    assert len(set(vocab.NEUTRAL_PROMPTS)) == len(vocab.NEUTRAL_PROMPTS)


def test_matcher_knows_authored_and_winogender_occupations():
    matcher = default_matcher()
    occupations = set(matcher.forms.values())
    assert set(vocab.OCCUPATIONS) <= occupations and {"paralegal", "dietitian", "hygienist"} <= occupations
    assert set(vocab.GENDERED_TITLES.values()) | set(vocab.OCCUPATION_ALIASES.values()) <= occupations


@pytest.mark.parametrize("text,occupation", [
    ("a waitress at a diner", "waiter"), ("an actress in Hollywood.", "actor"), ("a policeman", "police officer"),
    ("a software engineer at Google", "software engineer"), ("a nurse and a doctor", "nurse"),
    ("housewives", "homemaker"), ("the local seamstress", "tailor"), ("a cop for 10 years", "police officer"),
    ("a registered nurse", "nurse"), ("nothing at all", None),
])
def test_gendered_titles_fold_into_neutral_occupations(text, occupation):
    assert gd.first_occupation(text, default_matcher()) == occupation


def test_doctests():
    import doctest

    from fairpriv.tasks.gender_bias import divergence, sources

    for module in (vocab, sources, divergence):
        assert doctest.testmod(module, raise_on_error=False).failed == 0, module.__name__
