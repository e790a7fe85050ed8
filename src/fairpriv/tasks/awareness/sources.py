"""Data sources of the awareness tasks (DEAN / SPIN, arXiv 2410.16672), chosen at run time through ``--metadata``.

lm-eval calls :func:`awareness_dataset` / :func:`mc_dataset` (``custom_dataset``) with the run's metadata (the
``--metadata`` JSON merged with the model args) and the task's ``dataset_kwargs`` (``awareness_kind``). Keys read:

* ``fairness_source`` / ``privacy_source``, falling back to ``source``: ``builtin`` (default, offline), ``salad``
  (SALAD-Bench from the Hub, pinned revision), or a path to a local ``.csv`` (column ``questions``, as in the DEAN
  release; ``prompt`` also accepted) or ``.jsonl`` (key ``prompt``; ``questions``/``question`` also accepted);
* ``judge``: ``rule`` (default) or ``md-judge``; ``judge_model`` (default ``OpenSafetyLab/MD-Judge-v0.1``),
  ``judge_batch_size`` (default 8), ``judge_device`` (default ``cuda`` when available, else ``cpu``; e.g.
  ``cuda:1``) and ``judge_dtype`` (``auto``, the default, ``float32``, ``float16`` or ``bfloat16``) for model judges.

Every document is stamped with its ``source`` and ``judge`` (and the judge's model), so the judge filter and the
logged samples know what produced each number. Bad values fail here, before any generation, with a message that
names the key and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fairpriv import files
from fairpriv.hashing import sha256_file
from fairpriv.scorers import check_judge_name
from fairpriv.scorers.md_judge import check_device, check_dtype
from fairpriv.tasks.awareness import AWARENESS_DIR, KINDS, vocab
from fairpriv.tasks.loaders import read_jsonl

BUILTIN, SALAD = "builtin", "salad"
SOURCE_FILE = files.FileKind("awareness source file", "a header line with a 'questions' column and one question per "
                             "row (CSV), or one JSON object with a 'prompt' per line (JSONL)",
                             f"use source '{BUILTIN}'")
SALAD_REPO = "OpenSafetyLab/Salad-Data"
SALAD_REVISION = "e0f207e6a1f65392d945d0d67cf0fedc67d6285e"
SALAD_FILE = "base_set.json"
# 2-category filter: exactly the paper's 2,165 fairness and 657 privacy questions.
SALAD_CATEGORY = {"fairness": "Unfair Representation", "privacy": "Privacy Infringement"}
# 3-category leaves -> axis names reported in results
SALAD_AXES = {
    "racial and ethnic stereotyping": "race_ethnicity", "gender stereotyping": "gender",
    "religious stereotyping": "religion", "location stereotyping": "location", "age stereotyping": "age",
    "disability stereotyping": "disability", "inferring personal information": "inferring_personal_info",
    "leaking private information": "leaking_private_info",
}
def known_axes() -> list[str]:
    """Axes that have per-axis metrics declared in the task YAMLs (builtin axes and SALAD leaves)."""
    return sorted({*vocab.FAIRNESS_GROUPS, *vocab.PRIVACY_DATA, *SALAD_AXES.values()})


QUESTION_COLUMNS = {".csv": ("questions", "prompt"), ".jsonl": ("prompt", "questions", "question")}
DEFAULT_JUDGE_MODEL = "OpenSafetyLab/MD-Judge-v0.1"


# --- options ---------------------------------------------------------------------------------------------------
def source_of(kind: str, metadata: dict[str, Any]) -> str:
    return str(metadata.get(f"{kind}_source") or metadata.get("source") or BUILTIN)


def judge_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    name = check_judge_name(str(metadata.get("judge") or "rule"))
    batch = metadata.get("judge_batch_size", 8)
    if not str(batch).isdigit() or int(batch) < 1:
        raise ValueError(f"judge_batch_size must be a positive integer, got {batch!r}")
    model = str(metadata.get("judge_model") or DEFAULT_JUDGE_MODEL) if name != "rule" else ""
    fields = {"judge": name, "judge_model": model, "judge_batch_size": int(batch)}
    return fields if name == "rule" else {**fields, **placement(metadata)}


def placement(metadata: dict[str, Any]) -> dict[str, str]:
    """``judge_device`` ("" = pick at load time) and ``judge_dtype`` of a model judge. Only model judges get these
    keys, so the documents of rule-judged runs (and their ``doc_hash``) stay as they were."""
    return {"judge_device": check_device(metadata.get("judge_device"), "judge_device"),
            "judge_dtype": check_dtype(metadata.get("judge_dtype"), "judge_dtype")}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown awareness kind {kind!r}; expected one of {KINDS}")
    return kind


# --- readers ---------------------------------------------------------------------------------------------------
def read_builtin(kind: str) -> list[dict[str, Any]]:
    return read_jsonl(AWARENESS_DIR / f"{kind}_probes.jsonl")


def pick_column(path: Path, columns: list[str]) -> str:
    for name in QUESTION_COLUMNS[path.suffix.lower()]:
        if name in columns:
            return name
    expected = " or ".join(repr(c) for c in QUESTION_COLUMNS[path.suffix.lower()])
    raise ValueError(f"{path}: no question column; expected {expected}, found {columns or 'no columns'}")


def read_csv_questions(path: Path) -> list[dict[str, Any]]:
    header, rows = files.read_csv_rows(path, SOURCE_FILE)
    column = pick_column(path, header)
    return [{"prompt": row[column], "axis": row.get("axis") or ""} for row in rows]


def read_jsonl_questions(path: Path) -> list[dict[str, Any]]:
    rows = files.read_jsonl(path, SOURCE_FILE)
    column = pick_column(path, list(rows[0])) if rows else ""
    return [{"prompt": row.get(column), "axis": row.get("axis") or ""} for row in rows]


def read_local(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"awareness source file {path} does not exist")
    files.check_file(path, SOURCE_FILE)
    if path.suffix.lower() not in QUESTION_COLUMNS:
        raise ValueError(f"{path}: unsupported file type; use a .csv (column 'questions') or a .jsonl ('prompt')")
    reader = read_csv_questions if path.suffix.lower() == ".csv" else read_jsonl_questions
    rows = [r for r in reader(path) if isinstance(r["prompt"], str) and r["prompt"].strip()]
    if not rows:
        raise ValueError(f"{path} holds no questions")
    return rows


def salad_rows(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Filter SALAD-Bench base_set records to the paper's 2-category and map 3-category leaves to axes."""
    def leaf(text: str) -> str:
        return str(text).split(":", 1)[-1].strip().lower()

    wanted = SALAD_CATEGORY[kind].lower()
    return [{"prompt": r["question"], "axis": SALAD_AXES.get(leaf(r.get("3-category", "")), "")}
            for r in records if leaf(r.get("2-category", "")) == wanted]


def read_salad(kind: str) -> list[dict[str, Any]]:
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(SALAD_REPO, SALAD_FILE, repo_type="dataset", revision=SALAD_REVISION)
    except Exception as exc:
        raise RuntimeError(f"source 'salad' needs the Hugging Face Hub ({SALAD_REPO}@{SALAD_REVISION[:7]}): {exc}. "
                           "Offline, use the default source 'builtin' or a local file.") from None
    text = Path(path).read_text(encoding="utf-8")
    records = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]
    return salad_rows(records, kind)


def file_digest(path: Path) -> str:
    return sha256_file(path)[:12]


def read_source(kind: str, source: str) -> tuple[list[dict[str, Any]], str]:
    """Rows and a description of where they came from (recorded in every document)."""
    if source == BUILTIN:
        return read_builtin(kind), BUILTIN
    if source == SALAD:
        return read_salad(kind), f"salad:{SALAD_REPO}@{SALAD_REVISION[:12]}"
    path = Path(source).expanduser()
    if path.suffix.lower() in QUESTION_COLUMNS or path.exists():
        rows = read_local(path)
        return rows, f"file:{path.resolve()}#sha256={file_digest(path)}"
    raise ValueError(f"unknown awareness source {source!r} (metadata key '{kind}_source' or 'source'); use "
                     f"'{BUILTIN}', '{SALAD}', or a path to a .csv (column 'questions') or .jsonl ('prompt') file")


# --- documents -------------------------------------------------------------------------------------------------
def to_docs(rows: list[dict[str, Any]], kind: str, source: str, judge: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{**r, "axis": r.get("axis") if r.get("axis") in known_axes() else ""} for r in rows]
    axes = sorted({r["axis"] for r in rows} - {""})
    return [{
        "id": str(r.get("id") or f"{kind}-{n:05d}"), "prompt": r["prompt"], "kind": kind,
        "axis": r.get("axis") or "", "request": r.get("request") or "", "source": source, "axes": axes,
        "aware": r.get("aware") or "", "unaware": r.get("unaware") or "", **judge,
    } for n, r in enumerate(rows)]


def as_dataset(docs: list[dict[str, Any]]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def awareness_dataset(awareness_kind: str, **metadata: Any):
    """``custom_dataset`` of ``fairness_awareness`` / ``privacy_awareness``. ``awareness_kind`` comes from the task's
    ``dataset_kwargs``; it is not called ``kind`` because lm-eval passes the model args in the same call, and
    ``sft-hf``/``dp-hf`` have a ``kind`` key of their own."""
    kind, judge = awareness_kind, judge_fields(metadata)
    rows, source = read_source(check_kind(kind), source_of(kind, metadata))
    return as_dataset(to_docs(rows, kind, source, judge))


def mc_dataset(awareness_kind: str, **metadata: Any):
    """``custom_dataset`` of the judge-free ``*_mc`` tasks: always the builtin probes (they carry the replies)."""
    kind = awareness_kind
    rows = read_builtin(check_kind(kind))
    docs = to_docs(rows, kind, BUILTIN, {"judge": "none", "judge_model": "", "judge_batch_size": 0})
    return as_dataset([{**d, "choices": [d["aware"], d["unaware"]]} for d in docs])
