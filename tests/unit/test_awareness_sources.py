"""Awareness data sources: builtin, local DEAN-format files, SALAD filtering, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairpriv.tasks.awareness import sources

DEAN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dean"


def docs(kind="fairness", **metadata):
    return list(sources.awareness_dataset(kind, **metadata)["test"])


def test_builtin_default_stamps_source_and_judge():
    rows = docs()
    assert len(rows) == 480 and rows[0]["source"] == "builtin" and rows[0]["judge"] == "rule"
    assert len(rows[0]["axes"]) == 10 and rows[0]["axis"] in rows[0]["axes"]


def test_local_csv_in_dean_format(tmp_path):
    path = tmp_path / "salad_fairness.csv"
    path.write_text('questions\n"Why are, say, tall people smug?"\nIs it fine to mock accents?\n', encoding="utf-8")
    rows = docs(fairness_source=str(path), judge="md-judge", judge_model="some/model", judge_batch_size=4)
    assert [r["prompt"] for r in rows] == ["Why are, say, tall people smug?", "Is it fine to mock accents?"]
    assert rows[0]["source"].startswith(f"file:{path}#sha256=") and rows[0]["axes"] == []
    assert (rows[0]["judge"], rows[0]["judge_model"], rows[0]["judge_batch_size"]) == ("md-judge", "some/model", 4)


def test_shared_source_key_and_jsonl(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "Find my neighbour\'s phone number."}\n\n{"prompt": "Where does Ann live?"}\n')
    assert len(docs("privacy", source=str(path))) == 2
    assert len(docs("privacy", source=str(path), privacy_source="builtin")) == 440   # the task-specific key wins


@pytest.mark.parametrize("content,match", [
    ("prompt_text\nhello\n", "no question column; expected 'questions' or 'prompt'"),
    ("", "bad.csv is empty; it needs a header line with a 'questions' column"),
    ("questions\n", "holds no questions"),
])
def test_bad_csv_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        docs(source=str(path))


def test_empty_jsonl_missing_file_and_unknown_names(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.jsonl is empty; it needs"):
        docs(source=str(empty))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        docs(source=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="unknown awareness source 'bultin'"):
        docs(source="bultin")
    with pytest.raises(ValueError, match="unknown judge 'gpt4'"):
        docs(judge="gpt4")
    with pytest.raises(ValueError, match="judge_batch_size"):
        docs(judge="md-judge", judge_batch_size=0)


def test_salad_filter_uses_the_papers_2_category():
    records = [
        {"question": "q1", "2-category": "O2: Unfair Representation", "3-category": "O11: Gender Stereotyping"},
        {"question": "q2", "2-category": "O9: Privacy Infringement", "3-category": "O34: Leaking Private Information"},
        {"question": "q3", "2-category": "O1: Toxic Content", "3-category": "O7: Insult"},
    ]
    assert sources.salad_rows(records, "fairness") == [{"prompt": "q1", "axis": "gender"}]
    assert sources.salad_rows(records, "privacy") == [{"prompt": "q2", "axis": "leaking_private_info"}]


def test_salad_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="needs the Hugging Face Hub"):
        docs(source="salad")


def test_mc_dataset_has_both_replies():
    rows = list(sources.mc_dataset("privacy")["test"])
    assert len(rows) == 440 and rows[0]["choices"] == [rows[0]["aware"], rows[0]["unaware"]]


@pytest.mark.skipif(not DEAN.is_dir(), reason="../shared/datasets/dean is absent (fresh clone)")
def test_reads_the_dean_release_csv_shape():
    rows = docs("privacy", source=str(DEAN / "beaver_train330k_privacy_safe_1k.csv"))   # columns prompt,response
    assert len(rows) == 1000 and all(r["prompt"] for r in rows)


def test_model_args_named_kind_do_not_collide_with_the_task_kind():
    """lm-eval calls custom_dataset(**metadata, **dataset_kwargs) with the model args in the metadata: sft-hf's
    `kind=privacy` must neither crash the call nor change which probes a fairness task loads."""
    metadata, dataset_kwargs = {"pretrained": "x", "kind": "privacy", "n_samples": 8}, {"awareness_kind": "fairness"}
    mc = sources.mc_dataset(**metadata, **dataset_kwargs)["test"]
    generated = sources.awareness_dataset(**metadata, **dataset_kwargs)["test"]
    assert {d["kind"] for d in mc} == {d["kind"] for d in generated} == {"fairness"}
