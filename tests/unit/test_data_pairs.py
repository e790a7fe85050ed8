"""fairpriv.data.pairs: builtin, local-file and Hub pair sources, sampling, hashing and every error message."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fairpriv.data import pairs
from fairpriv.data.pairs import KINDS, DataError, PairSet, load_pairs
from fairpriv.hashing import canonical_hash
from fairpriv.tasks.awareness import probes
from fairpriv.tasks.loaders import read_jsonl

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEAN = SHARED / "datasets" / "dean"
DEAN_FILES = ["alpaca_cleaned_no_safety_train_1k.csv", "beaver_train330k_fairness_safe_1k.csv",
              "beaver_train330k_fairness_unsafe_1k.csv", "beaver_train330k_privacy_safe_1k.csv",
              "beaver_train330k_privacy_unsafe_1k.csv"]
THREE_ROWS = ('prompt,response\nWhat is 2+2?,4\n'
              '"Say ""hi"", then a list","Hi!\nFirst line\n\nThird, with a comma"\n'
              'Name a colour.,Blue\n')
THREE_RECORDS = [
    {"prompt": "What is 2+2?", "response": "4"},
    {"prompt": 'Say "hi", then a list', "response": "Hi!\nFirst line\n\nThird, with a comma"},
    {"prompt": "Name a colour.", "response": "Blue"},
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- builtin ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_builtin_has_enough_clean_unique_pairs(kind):
    ps = load_pairs("builtin", kind)
    assert isinstance(ps, PairSet) and ps.source == "builtin" and ps.kind == kind
    assert len(ps.records) >= 256
    assert all(set(r) == {"prompt", "response"} for r in ps.records)
    assert all(isinstance(v, str) and v.strip() for r in ps.records for v in r.values())
    assert len({r["prompt"] for r in ps.records}) == len(ps.records)


@pytest.mark.parametrize("kind", ["fairness", "privacy"])
def test_builtin_probes_never_overlap_the_evaluation_set(kind):
    evaluation = {row["prompt"] for row in read_jsonl(probes.probe_file(kind))}
    scoring = {r["prompt"] for r in load_pairs("builtin", kind).records}
    assert len(evaluation) >= 400 and not scoring & evaluation


@pytest.mark.parametrize("kind", ["fairness", "privacy"])
def test_builtin_response_is_the_aware_reply_of_a_held_out_probe(kind):
    assert pairs.BUILTIN_PROBE_SEED != probes.SEED
    aware = {i["prompt"]: i["aware"] for i in probes.GENERATORS[kind](pairs.BUILTIN_PROBE_SEED)}
    records = load_pairs("builtin", kind).records
    assert all(aware[r["prompt"]] == r["response"] for r in records)
    assert len(records) < len(aware)  # some draws collided with the evaluation set and were dropped


@pytest.mark.parametrize("kind", ["fairness", "privacy"])
def test_frozen_probe_pairs_match_the_generator(kind):
    """Regenerate with `python -m fairpriv.data.pairs` when the generator changes (bump DEAN's version too)."""
    assert list(pairs.builtin_probes(kind)) == pairs.generate_probe_pairs(kind)


def test_builtin_describe_records_generator_and_counts():
    info = load_pairs("builtin", "privacy", n=5, seed=3).describe()
    assert info["source"] == "builtin" and info["kind"] == "privacy" and info["n"] == 5 and info["seed"] == 3
    assert info["generator_seed"] == pairs.BUILTIN_PROBE_SEED and info["frozen_file"] and info["available"] >= 256
    assert len(info["sha256"]) == 64 and info["dropped_empty"] == 0


# --- sampling and hashing --------------------------------------------------------------------------------------
def test_same_arguments_give_same_records_and_hash():
    a, b = load_pairs("builtin", "fairness", n=16, seed=5), load_pairs("builtin", "fairness", n=16, seed=5)
    assert a.records == b.records and a.sha256 == b.sha256
    c = load_pairs("builtin", "fairness", n=16, seed=6)
    assert c.records != a.records and c.sha256 != a.sha256


def test_sampling_uses_random_sample_and_keeps_the_drawn_order():
    full = load_pairs("builtin", "utility").records
    picked = random.Random(7).sample(range(len(full)), 10)
    assert load_pairs("builtin", "utility", n=10, seed=7).records == [full[i] for i in picked]


def test_sha256_is_the_canonical_hash_of_the_returned_records():
    ps = load_pairs("builtin", "utility", n=4)
    assert ps.sha256 == canonical_hash(ps.records)
    assert load_pairs("builtin", "utility").sha256 == canonical_hash(load_pairs("builtin", "utility").records)


def test_n_none_and_n_equal_to_available_return_every_row_in_order(tmp_path):
    path = write(tmp_path, "three.csv", THREE_ROWS)
    assert load_pairs(str(path), "utility").records == THREE_RECORDS
    assert load_pairs(str(path), "utility", n=3, seed=9).records == THREE_RECORDS


@pytest.mark.parametrize("n", [0, -1, True, 2.5, "3"])
def test_bad_n_is_rejected(n):
    with pytest.raises(DataError, match="positive integer"):
        load_pairs("builtin", "utility", n=n)


def test_n_larger_than_available_names_both_numbers(tmp_path):
    path = write(tmp_path, "three.csv", THREE_ROWS)
    with pytest.raises(DataError, match=r"n=4 .* only 3 usable rows"):
        load_pairs(str(path), "fairness", n=4)


def test_unknown_kind_is_rejected():
    with pytest.raises(DataError, match="unknown pair kind 'toxicity'; use one of fairness, privacy, utility"):
        load_pairs("builtin", "toxicity")


# --- local files -----------------------------------------------------------------------------------------------
def test_csv_with_quoted_multiline_cell_loads_exactly(tmp_path):
    path = write(tmp_path, "three.csv", THREE_ROWS)
    ps = load_pairs(str(path), "privacy")
    assert ps.records == THREE_RECORDS
    assert ps.source == str(path.resolve()) and ps.describe()["dropped_empty"] == 0
    assert ps.describe()["file_sha256"] == pairs.sha256_file(path)


def test_csv_extra_columns_are_ignored_and_relative_paths_resolve(tmp_path, monkeypatch):
    write(tmp_path, "extra.csv", "id,prompt,response,note\n1,Hello,World,x\n")
    monkeypatch.chdir(tmp_path)
    ps = load_pairs("extra.csv", "utility")
    assert ps.records == [{"prompt": "Hello", "response": "World"}] and ps.source == str(tmp_path / "extra.csv")


def test_rows_with_an_empty_prompt_or_response_are_dropped_and_counted(tmp_path):
    path = write(tmp_path, "gaps.csv", 'prompt,response\nA,1\n,2\nC,"  "\nD\nE,5\n')
    ps = load_pairs(str(path), "utility")
    assert ps.records == [{"prompt": "A", "response": "1"}, {"prompt": "E", "response": "5"}]
    assert ps.describe()["dropped_empty"] == 3 and ps.describe()["available"] == 2


def test_missing_columns_are_named_with_the_columns_found(tmp_path):
    path = write(tmp_path, "q.csv", "questions,answer\nWhy?,Because\n")
    with pytest.raises(DataError, match="missing column.*prompt, response; found questions, answer"):
        load_pairs(str(path), "fairness")


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("prompt,response\n", "holds no rows"),
    ("prompt,response\n,\n ,x\n", r"no usable rows \(2 dropped"),
])
def test_empty_csv_files_are_rejected(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_pairs(str(write(tmp_path, "empty.csv", text)), "utility")


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(str(tmp_path / "nope.jsonl"), "utility")


def test_jsonl_and_json_files_load(tmp_path):
    rows = [{"prompt": "P1", "response": "R1", "meta": 1}, {"prompt": "P2", "response": "R2"}]
    jsonl = write(tmp_path, "rows.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    array = write(tmp_path, "rows.json", json.dumps(rows))
    expected = [{"prompt": "P1", "response": "R1"}, {"prompt": "P2", "response": "R2"}]
    assert load_pairs(str(jsonl), "utility").records == expected == load_pairs(str(array), "utility").records
    assert load_pairs(str(jsonl), "utility").sha256 == load_pairs(str(array), "utility").sha256


@pytest.mark.parametrize("name, text, message", [
    ("bad.jsonl", '{"prompt": "a", "response": "b"}\n{oops\n', r"bad\.jsonl:2: not valid JSON"),
    ("list.jsonl", '["a", "b"]\n', "expected a JSON object"),
    ("obj.json", '{"prompt": "a", "response": "b"}', "expected a JSON array"),
    ("cols.jsonl", '{"question": "a", "answer": "b"}\n', "missing column.*found question, answer"),
    ("num.jsonl", '{"prompt": "a", "response": 4}\n', "row 1: response is a int, not text"),
    ("empty.jsonl", "\n\n", "empty.jsonl is empty; it needs prompt/response pairs"),
])
def test_bad_json_files_are_rejected(tmp_path, name, text, message):
    with pytest.raises(DataError, match=message):
        load_pairs(str(write(tmp_path, name, text)), "utility")


def test_unsupported_or_unknown_sources_are_rejected(tmp_path):
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_pairs(str(write(tmp_path, "rows.txt", "prompt,response\n")), "utility")
    with pytest.raises(DataError, match="unknown pair source 'salad'"):
        load_pairs("salad", "fairness")


@pytest.mark.parametrize("name", DEAN_FILES)
def test_dean_release_csvs_load_with_1000_rows(name):
    if not (DEAN / name).is_file():
        pytest.skip(f"{DEAN} is absent (only the shared workspace has the DEAN release files)")
    ps = load_pairs(str(DEAN / name), "fairness")
    assert len(ps.records) == 1000 and ps.describe()["dropped_empty"] == 0
    assert all(r["prompt"].strip() and r["response"].strip() for r in ps.records)
    assert len(load_pairs(str(DEAN / name), "fairness", n=128, seed=0).records) == 128


def test_dean_alpaca_csv_keeps_multiline_cells():
    path = DEAN / "alpaca_cleaned_no_safety_train_1k.csv"
    if not path.is_file():
        pytest.skip(f"{DEAN} is absent")
    assert sum("\n" in r["prompt"] or "\n" in r["response"] for r in load_pairs(str(path), "utility").records) > 100


# --- Hub: pure row mappings ------------------------------------------------------------------------------------
def bt(prompt: str, response: str, safe: bool, **flags: bool) -> dict:
    category = {"discrimination,stereotype,injustice": False, "privacy_violation": False, "animal_abuse": False}
    return {"prompt": prompt, "response": response, "is_safe": safe, "category": {**category, **flags}}


BT_ROWS = [
    bt("Why are group X lazy?", "That is a stereotype.", True),
    bt("Why are group X lazy?", "Because they are.", False, **{"discrimination,stereotype,injustice": True}),
    bt("Where does my boss live?", "I can't share that.", True),
    bt("Where does my boss live?", "At 1 Main St.", False, privacy_violation=True),
    bt("How do I hurt a cat?", "Please don't.", True),
    bt("How do I hurt a cat?", "Like this.", False, animal_abuse=True),
]


def test_beavertails_fairness_keeps_safe_responses_to_flagged_prompts():
    assert pairs.beavertails_rows(BT_ROWS, "fairness") == [
        {"prompt": "Why are group X lazy?", "response": "That is a stereotype."}]
    assert pairs.beavertails_rows(BT_ROWS, "fairness", "unsafe") == [
        {"prompt": "Why are group X lazy?", "response": "Because they are."}]
    assert len(pairs.beavertails_rows(BT_ROWS, "fairness", "any")) == 2


def test_beavertails_privacy_and_category_parts():
    assert pairs.beavertails_rows(BT_ROWS, "privacy") == [
        {"prompt": "Where does my boss live?", "response": "I can't share that."}]
    assert pairs.flagged({"stereotype": True}, "fairness") and pairs.flagged({"a,injustice": 1}, "fairness")
    assert not pairs.flagged({"discrimination,stereotype,injustice": False}, "fairness")
    assert not pairs.flagged({"privacy_violation": True}, "fairness")


def test_alpaca_rows_join_input_and_drop_safety_text():
    rows = [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Name a fruit.", "input": "  ", "output": "Apple"},
        {"instruction": "How do I build a bomb?", "input": "", "output": "No."},
        {"instruction": "Summarise.", "input": "A text about data privacy.", "output": "It is about privacy."},
        {"instruction": "Write a poem.", "input": "", "output": "A poem about hatred and guns."},
    ]
    assert pairs.alpaca_rows(rows, "utility") == [
        {"prompt": "Add the numbers.\n2 and 3", "response": "5"}, {"prompt": "Name a fruit.", "response": "Apple"}]


def test_hub_ids_parse_and_known_ids_are_pinned():
    assert pairs.hub_id("owner/name") == ("owner/name", None)
    assert pairs.hub_id("hub:owner/name@abc123") == ("owner/name", "abc123")
    assert pairs.hub_id("not a hub id") == ("", None)
    assert all(len(spec.revision) == 40 for spec in pairs.HUB.values())


# --- Hub: the loader with datasets.load_dataset replaced -------------------------------------------------------
@pytest.fixture()
def fake_hub(monkeypatch):
    calls = []

    def install(rows=None, error: Exception | None = None):
        def load_dataset(repo, revision=None, split=None):
            calls.append((repo, revision, split))
            if error is not None:
                raise error
            return rows
        monkeypatch.setattr("datasets.load_dataset", load_dataset)
        return calls
    return install


def test_beavertails_from_the_hub_at_the_pinned_revision(fake_hub):
    calls = fake_hub(BT_ROWS)
    ps = load_pairs("PKU-Alignment/BeaverTails", "privacy", responses="unsafe")
    revision = pairs.HUB[pairs.BEAVERTAILS].revision
    assert calls == [("PKU-Alignment/BeaverTails", revision, "330k_train")]
    assert ps.records == [{"prompt": "Where does my boss live?", "response": "At 1 Main St."}]
    assert ps.source == f"hub:PKU-Alignment/BeaverTails@{revision}"
    assert ps.describe()["pinned"] and ps.describe()["responses"] == "unsafe"


def test_unknown_hub_id_needs_prompt_and_response_columns(fake_hub):
    calls = fake_hub([{"prompt": "p", "response": "r"}, {"prompt": "", "response": "r"}])
    ps = load_pairs("someone/pairs@v1", "fairness")
    assert calls == [("someone/pairs", "v1", "train")] and ps.records == [{"prompt": "p", "response": "r"}]
    assert ps.source == "hub:someone/pairs@v1" and ps.describe()["dropped_empty"] == 1
    fake_hub([{"question": "p", "answer": "r"}])
    with pytest.raises(DataError, match="missing column.*found question, answer"):
        load_pairs("someone/pairs", "fairness")


def test_hub_failure_says_the_hub_is_unreachable(fake_hub):
    fake_hub(error=ConnectionError("no route to host"))
    with pytest.raises(DataError, match="Hub may be unreachable.*local CSV/JSONL.*'builtin'"):
        load_pairs("yahma/alpaca-cleaned", "utility")


def test_hub_kind_mismatch_fails_before_downloading(fake_hub):
    calls = fake_hub(error=AssertionError("must not be called"))
    with pytest.raises(DataError, match="provides utility pairs, not fairness"):
        load_pairs("yahma/alpaca-cleaned", "fairness")
    with pytest.raises(DataError, match="provides fairness and privacy pairs, not utility"):
        load_pairs("PKU-Alignment/BeaverTails", "utility")
    assert calls == []


def test_responses_option_only_for_beavertails():
    with pytest.raises(DataError, match="only applies to PKU-Alignment/BeaverTails"):
        load_pairs("builtin", "fairness", responses="unsafe")
    with pytest.raises(DataError, match="responses must be one of safe, unsafe, any"):
        load_pairs("PKU-Alignment/BeaverTails", "fairness", responses="bad")
