"""Prompt/response pair sets for DEAN importance scoring (arXiv 2410.16672) and the SFT / DP trainers.

DEAN scores every weight on three data sets (fairness, privacy, general utility; 128 examples each, seed 0). This
module gives them one loader, ``load_pairs(source, kind, n, seed)``, over three layers of sources:

* ``builtin``: the project-authored offline default. fairness / privacy are held-out awareness probes from
  :mod:`fairpriv.tasks.awareness.probes` (another seed; every prompt of the frozen evaluation files is dropped)
  with their *aware* reply as the response; utility is the frozen set of :mod:`fairpriv.data.utility`.
* a local ``.csv`` (the DEAN release format: columns ``prompt,response``), ``.jsonl`` or ``.json`` file;
* a Hugging Face Hub id ``owner/name[@revision]``, loaded at a pinned revision. Known ids have a row mapping
  (:data:`HUB`); the mapping functions are pure and tested on hand-made rows.

Every result is a :class:`PairSet` carrying the normalised source and the sha256 of the records it returns, so an
artifact's cache key and manifest record exactly which data scored it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fairpriv.data import utility
from fairpriv.data.utility import UTILITY_FILE
from fairpriv.files import DataError, FileKind, check_file, read_csv_rows, read_json, read_jsonl
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.tasks import loaders
from fairpriv.tasks.awareness import probes
from fairpriv.tasks.loaders import write_jsonl

KINDS = ("fairness", "privacy", "utility")
BUILTIN = "builtin"
LOCAL_SUFFIXES = (".csv", ".jsonl", ".json")
COLUMNS = ("prompt", "response")
RESPONSES = {"safe": True, "unsafe": False, "any": None}
BUILTIN_PROBE_SEED = 20241022  # != probes.SEED (20241021): held-out draws, overlaps with the eval files dropped
HUB_ID = re.compile(r"^(?:hub:)?([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")


PAIR_FILE = FileKind("pair file", "prompt/response pairs (CSV: a header line 'prompt,response', then one row per "
                     "pair; JSONL: one {\"prompt\", \"response\"} object per line)", "use source 'builtin'")


@dataclass(frozen=True)
class PairSet:
    records: list[dict]
    source: str
    kind: str
    sha256: str
    info: dict = field(default_factory=dict)  # available, dropped_empty, seed, revision, file sha256, ...

    def __len__(self) -> int:
        return len(self.records)

    def describe(self) -> dict:
        """What a manifest records about the data (everything needed to reload it)."""
        return {"source": self.source, "kind": self.kind, "n": len(self.records), "sha256": self.sha256, **self.info}


@dataclass(frozen=True)
class Loaded:
    """Rows of a source before sampling: cleaned records, normalised source, extra facts for ``describe``."""
    records: list[dict]
    source: str
    info: dict


# --- entry point -----------------------------------------------------------------------------------------------
def load_pairs(source: str, kind: str, n: int | None = None, seed: int = 0, *, responses: str = "safe") -> PairSet:
    """``n`` prompt/response pairs of ``kind`` from ``source`` (all rows when ``n`` is None), sampled with ``seed``.

    ``responses`` (``safe``/``unsafe``/``any``) selects BeaverTails responses (DEAN's "malicious" setting uses
    ``unsafe``); it is an error for other sources.
    """
    check_kind(kind)
    check_n(n)
    check_responses(str(source), responses)
    loaded = resolve(str(source), kind, responses)
    records = sample(loaded.records, n, seed, loaded.source)
    info = {**loaded.info, "available": len(loaded.records), "seed": seed}
    return PairSet(records, loaded.source, kind, canonical_hash(records), info)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DataError(f"unknown pair kind {kind!r}; use one of {', '.join(KINDS)}")


def check_n(n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise DataError(f"n must be a positive integer or None (all rows), got {n!r}")


def check_responses(source: str, responses: str) -> None:
    if responses not in RESPONSES:
        raise DataError(f"responses must be one of {', '.join(RESPONSES)}, got {responses!r}")
    if responses != "safe" and hub_id(source)[0] != BEAVERTAILS:
        raise DataError(f"responses={responses!r} only applies to {BEAVERTAILS}; drop it for source {source!r}")


def sample(records: list, n: int | None, seed: int, source: str, unit: str = "pairs") -> list:
    """All rows, or ``n`` of them drawn with ``random.Random(seed)`` and kept in the drawn order."""
    if n is None or n == len(records):
        return list(records)
    if n > len(records):
        raise DataError(f"asked for n={n} {unit} but {source} has only {len(records)} usable rows; "
                        f"lower n to at most {len(records)} or pass a larger source")
    return [records[i] for i in random.Random(seed).sample(range(len(records)), n)]


def resolve(source: str, kind: str, responses: str) -> Loaded:
    if source == BUILTIN:
        return load_builtin(kind)
    path = Path(source).expanduser()
    if path.suffix.lower() in LOCAL_SUFFIXES or path.is_dir():
        return load_local(check_file(path, PAIR_FILE))
    if path.exists():
        raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use a .csv (columns "
                        "prompt,response), .jsonl or .json file")
    if HUB_ID.match(source):
        return load_hub(source, kind, responses)
    raise DataError(f"unknown pair source {source!r}; use 'builtin', a path to a .csv/.jsonl/.json file with "
                    "columns prompt,response, or a Hugging Face dataset id owner/name[@revision]")


# --- cleaning --------------------------------------------------------------------------------------------------
def clean(rows: Iterable[Mapping[str, Any]], where: str) -> tuple[list[dict], int]:
    """``{"prompt", "response"}`` records of ``rows`` and how many were dropped for an empty prompt or response."""
    records, dropped = [], 0
    for number, row in enumerate(rows, 1):
        prompt, response = row.get("prompt"), row.get("response")
        for name, value in (("prompt", prompt), ("response", response)):
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: row {number}: {name} is a {type(value).__name__}, not text; "
                                "prompt and response must be strings")
        if prompt and prompt.strip() and response and response.strip():
            records.append({"prompt": prompt, "response": response})
        else:
            dropped += 1
    return records, dropped


def require_columns(found: Iterable[str], where: str, needed: tuple[str, ...] = COLUMNS) -> None:
    found = list(found)
    missing = [c for c in needed if c not in found]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(found) or 'no columns'}. "
                        f"Rename the columns to {','.join(needed)}")


def finish(records: list[dict], dropped: int, where: str, source: str, info: dict) -> Loaded:
    if not records:
        raise DataError(f"{where}: no usable rows ({dropped} dropped for an empty prompt or response); "
                        "every row needs a non-empty prompt and response")
    return Loaded(records, source, {**info, "dropped_empty": dropped})


# --- builtin ---------------------------------------------------------------------------------------------------
def load_builtin(kind: str) -> Loaded:
    records = builtin_utility() if kind == "utility" else builtin_probes(kind)
    return Loaded(list(records), BUILTIN, {"dropped_empty": 0, **builtin_info(kind)})


def probe_pairs_file(kind: str) -> Path:
    return Path(__file__).with_name(f"{kind}_pairs.jsonl")


@lru_cache(maxsize=None)
def builtin_probes(kind: str) -> tuple[dict, ...]:
    """The frozen held-out probe pairs (``{kind}_pairs.jsonl``), so scoring data never depends on faker's version."""
    return tuple(loaders.read_jsonl(probe_pairs_file(kind)))


def generate_probe_pairs(kind: str) -> list[dict]:
    """Aware replies to fresh probes (seed ``BUILTIN_PROBE_SEED``), minus every prompt of the evaluation set."""
    evaluation = {row["prompt"] for row in loaders.read_jsonl(probes.probe_file(kind))}
    items = probes.GENERATORS[kind](BUILTIN_PROBE_SEED)
    return [{"prompt": i["prompt"], "response": i["aware"]} for i in items if i["prompt"] not in evaluation]


def write_probe_pairs() -> None:
    """``python -m fairpriv.data.pairs`` regenerates the frozen fairness/privacy scoring sets."""
    for kind in ("fairness", "privacy"):
        write_jsonl(probe_pairs_file(kind), generate_probe_pairs(kind))


@lru_cache(maxsize=None)
def builtin_utility() -> tuple[dict, ...]:
    return tuple({"prompt": r["prompt"], "response": r["response"]} for r in loaders.read_jsonl(UTILITY_FILE))


def builtin_info(kind: str) -> dict:
    if kind == "utility":
        return {"generator": "fairpriv.data.utility", "generator_seed": utility.SEED}

    return {"generator": "fairpriv.tasks.awareness.probes", "generator_seed": BUILTIN_PROBE_SEED,
            "frozen_file": f"fairpriv/data/{kind}_pairs.jsonl"}


# --- local files -----------------------------------------------------------------------------------------------
def load_local(path: Path) -> Loaded:
    reader = {".csv": read_csv, ".jsonl": read_jsonl_rows, ".json": read_json_rows}[path.suffix.lower()]
    records, dropped = clean(reader(path), str(path))
    return finish(records, dropped, str(path), str(path.resolve()), {"file_sha256": sha256_file(path)})


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file with a header (cells may be quoted and span lines, as in the DEAN release)."""
    header, rows = read_csv_rows(path, PAIR_FILE)
    require_columns(header, str(path))
    return no_empty_file(rows, path)


def read_jsonl_rows(path: Path) -> list[dict]:
    return checked_json_rows(read_jsonl(path, PAIR_FILE), path)


def read_json_rows(path: Path) -> list[dict]:
    data = read_json(path, PAIR_FILE)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of objects with keys prompt and response, "
                        f"got a {type(data).__name__}")
    return checked_json_rows([as_object(row, f"{path}[{i}]") for i, row in enumerate(data)], path)


def as_object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object with keys prompt and response, got {type(value).__name__}")
    return value


def checked_json_rows(rows: list[dict], path: Path) -> list[dict]:
    no_empty_file(rows, path)
    require_columns(dict.fromkeys(key for row in rows for key in row), str(path))
    return rows


def no_empty_file(rows: list, path: Path) -> list:
    if not rows:
        raise DataError(f"{path} holds no rows; add prompt/response rows or use source 'builtin'")
    return rows


# --- Hugging Face Hub ------------------------------------------------------------------------------------------
BEAVERTAILS, ALPACA = "PKU-Alignment/BeaverTails", "yahma/alpaca-cleaned"
# BeaverTails category keys are comma-joined names ("discrimination,stereotype,injustice"); a key counts when any
# of its parts is listed here.
BEAVERTAILS_CATEGORIES = {"fairness": {"discrimination", "stereotype", "injustice"}, "privacy": {"privacy_violation"}}
# Alpaca-cleaned rows whose text matches one of these stems (case-insensitive, at a word start) are dropped, so the
# utility set holds no safety, fairness or privacy content. DEAN's own filter is not published (UNVERIFIED).
ALPACA_SAFETY_STEMS = (
    "kill", "murder", "weapon", "gun", "bomb", "explosive", "terror", "violen", "assault", "abuse", "suicide",
    "self-harm", "drug", "steal", "theft", "fraud", "hack", "illegal", "crime", "criminal", "racis", "sexis",
    "discriminat", "stereotyp", "prejudice", "bias", "hate", "offensive", "slur", "privacy", "private",
    "personal information", "personal data", "password", "social security", "surveillance", "harass", "porn",
    "sexual", "nude", "extremis",
)
SAFETY_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(s) for s in ALPACA_SAFETY_STEMS) + ")", re.IGNORECASE)


def beavertails_rows(rows: Iterable[Mapping[str, Any]], kind: str, responses: str = "safe") -> list[dict]:
    """BeaverTails rows of ``kind``. Categories are flagged only on unsafe QA pairs (a safe pair has every flag
    false), so membership is decided per prompt: a prompt belongs to ``kind`` when any of its pairs is flagged;
    then its pairs with the wanted ``is_safe`` are kept (DEAN's released 1k sets repeat prompts, as this does).
    ``rows`` is iterated twice (a list or a ``datasets.Dataset``)."""
    if kind not in BEAVERTAILS_CATEGORIES:
        raise DataError(f"{BEAVERTAILS} has no {kind} rows; use it for fairness or privacy, and "
                        f"'{ALPACA}' or 'builtin' for utility")
    prompts = {row["prompt"] for row in rows if flagged(row.get("category") or {}, kind)}
    wanted = RESPONSES[responses]
    return [{"prompt": row["prompt"], "response": row["response"]} for row in rows
            if row["prompt"] in prompts and (wanted is None or bool(row["is_safe"]) == wanted)]


def flagged(category: Mapping[str, Any], kind: str) -> bool:
    names = BEAVERTAILS_CATEGORIES[kind]
    return any(bool(value) and names & set(key.split(",")) for key, value in category.items())


def alpaca_rows(rows: Iterable[Mapping[str, Any]], kind: str, responses: str = "safe") -> list[dict]:
    """Alpaca-cleaned as utility pairs: prompt = instruction + "\\n" + input (when input is non-empty)."""
    if kind != "utility":
        raise DataError(f"{ALPACA} only provides utility rows; use '{BEAVERTAILS}' or 'builtin' for {kind}")
    out = []
    for row in rows:
        prompt = alpaca_prompt(row.get("instruction") or "", row.get("input") or "")
        response = row.get("output") or ""
        if not SAFETY_PATTERN.search(prompt + "\n" + response):
            out.append({"prompt": prompt, "response": response})
    return out


def alpaca_prompt(instruction: str, input_text: str) -> str:
    return instruction + "\n" + input_text if input_text.strip() else instruction


def generic_rows(rows: Iterable[Mapping[str, Any]], kind: str, responses: str = "safe") -> list[dict]:
    """Any other dataset: it must have ``prompt`` and ``response`` columns; ``kind`` is the caller's word."""
    return [{"prompt": row.get("prompt"), "response": row.get("response")} for row in rows]


@dataclass(frozen=True)
class HubSpec:
    revision: str
    split: str
    kinds: tuple[str, ...]
    columns: tuple[str, ...]
    mapper: Callable[..., list[dict]]
    licence: str


HUB: dict[str, HubSpec] = {
    # HEAD of main since 2023-10-17 ("Re-upload BeaverTails-30k and refactoring"); has splits 330k_train etc.
    BEAVERTAILS: HubSpec("8401fe609d288129cc684a9b3be6a93e41cfe678", "330k_train", ("fairness", "privacy"),
                         ("prompt", "response", "category", "is_safe"), beavertails_rows, "CC BY-NC 4.0"),
    ALPACA: HubSpec("12567cabf869d7c92e573c7c783905fc160e9639", "train", ("utility",),
                    ("instruction", "input", "output"), alpaca_rows, "CC BY 4.0"),
}
GENERIC = HubSpec("main", "train", KINDS, COLUMNS, generic_rows, "see the dataset card")


def hub_id(source: str) -> tuple[str, str | None]:
    """``(owner/name, revision or None)`` of a Hub source; ``("", None)`` for anything else."""
    match = HUB_ID.match(source)
    return (match.group(1), match.group(2)) if match else ("", None)


def load_hub(source: str, kind: str, responses: str) -> Loaded:
    repo, revision = hub_id(source)
    spec = HUB.get(repo, GENERIC)
    if kind not in spec.kinds:
        raise DataError(f"{repo} provides {' and '.join(spec.kinds)} pairs, not {kind}; for {kind} use "
                        f"'builtin', a local file or {' / '.join(r for r, s in HUB.items() if kind in s.kinds)}")
    revision = revision or spec.revision
    dataset = fetch_hub(repo, revision, spec.split)
    where = f"hub:{repo}@{revision} split {spec.split}"
    require_columns(dataset_columns(dataset), where, spec.columns)
    records, dropped = clean(spec.mapper(dataset, kind, responses), where)
    info = {"revision": revision, "split": spec.split, "pinned": revision != "main", "licence": spec.licence}
    if repo == BEAVERTAILS:
        info["responses"] = responses
    return finish(records, dropped, where, f"hub:{repo}@{revision}", info)


def fetch_hub(repo: str, revision: str, split: str):
    try:
        import datasets

        return datasets.load_dataset(repo, revision=revision, split=split)
    except Exception as exc:  # offline, missing revision, missing split: all end the same way here
        raise DataError(f"could not load {repo}@{revision} (split {split}) from the Hugging Face Hub: "
                        f"{type(exc).__name__}: {exc}. The Hub may be unreachable; pass a local CSV/JSONL file "
                        "with columns prompt,response, or use source 'builtin'") from None


def dataset_columns(dataset) -> list[str]:
    names = getattr(dataset, "column_names", None)
    if names is not None:
        return list(names)
    return list(dict.fromkeys(key for row in dataset for key in row))


if __name__ == "__main__":
    write_probe_pairs()
