"""``compat=release``: the scoring inputs of the code released with the DEAN paper (ChnQ/DEAN), for reproducing
its masks. fairpriv's own defaults differ on purpose; this module holds only what the release does differently:

* sampling: each data set is a local CSV with columns ``prompt,response``, read with ``datasets``' CSV loader
  (every row, empty fields included) and sampled with ``Dataset.shuffle(seed=seed).select(range(n))``; fairpriv
  otherwise drops empty rows and draws with ``random.Random(seed).sample``, so the two pick different examples;
* tokenisation: prompt and response are tokenised separately, both with the tokenizer's special tokens, and the
  FIRST token of the response is dropped (the release assumes it is a BOS token; for a tokenizer without one,
  such as SmolLM2's, this drops a real token). No truncation: ``score_max_length`` does not apply. An example left
  without a labelled token is dropped and counted (the release would get a NaN loss from it);
* counting: ``int(p * cols * rows)`` (:func:`.select.release_count`) instead of floor(p * N).

The release also loads the slow tokenizer (``use_fast=False``) and the model in bfloat16 with bfloat16 score
accumulation; fairpriv uses the tokenizer and dtype it was given and accumulates in float32 unless
``score_dtype=bfloat16``. Pure functions, except :func:`sample_csv`, which reads the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from fairpriv.data.pairs import PairSet
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.dean.score import Example

SAMPLING = "datasets: load_dataset('csv').shuffle(seed).select(range(n))"


def csv_path(source: str, kind: str) -> Path:
    """The local CSV that ``{kind}_data`` names; ConfigError when it is not one (the release reads only CSVs)."""
    path = Path(source).expanduser()
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise ConfigError(f"compat=release samples a local .csv with columns prompt,response, as the released code "
                          f"does; {kind}_data={source!r} is not one: pass the release's CSV (e.g. "
                          f"beaver_train330k_{kind}_safe_1k.csv) or drop compat=release")
    return path.resolve()


def sample_csv(path: Path, n: int, seed: int) -> tuple[list[dict], int]:
    """The release's sample of ``n`` rows (in its order) and the number of rows in the file."""
    from datasets import load_dataset

    with tempfile.TemporaryDirectory(prefix="fairpriv-dean-csv-") as cache:
        rows = load_dataset("csv", data_files={"train": str(path)}, split="train", cache_dir=cache,
                            keep_in_memory=True)
        check_rows(rows.column_names, len(rows), n, path)
        picked = rows.shuffle(seed=seed).select(range(n))
        return [{"prompt": p, "response": r} for p, r in zip(picked["prompt"], picked["response"])], len(rows)


def check_rows(columns: list[str], available: int, n: int, path: Path) -> None:
    missing = [c for c in ("prompt", "response") if c not in columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(columns)}); "
                          "the release format is prompt,response")
    if n > available:
        raise ConfigError(f"n_samples={n} but {path} has only {available} rows; lower n_samples")


def check_text(records: list[dict], path: Path) -> None:
    """The release tokenises every sampled field; an empty CSV field (None) would crash it, so refuse it here."""
    bad = [i for i, r in enumerate(records) if not isinstance(r["prompt"], str) or not isinstance(r["response"], str)]
    if bad:
        raise ConfigError(f"{path}: sampled row(s) {bad[:5]} (in sampled order) have an empty prompt or response; "
                          "fill them or remove them from the CSV")


def load_release_pairs(source: str, kind: str, n: int, seed: int) -> Any:
    """A :class:`fairpriv.data.pairs.PairSet` of the rows the release samples from ``source``."""
    path = csv_path(source, kind)
    records, available = sample_csv(path, n, seed)
    check_text(records, path)
    info = {"available": available, "seed": seed, "file_sha256": sha256_file(path), "sampling": SAMPLING}
    return PairSet(records, str(path), kind, canonical_hash(records), info)


# ------------------------------------------------------------------------------------------------ tokenisation


def encode_release(tokenizer: Any, prompt: str, response: str) -> Example:
    """Prompt ids (special tokens included) + response ids without their first token; labels on the latter."""
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    response_ids = list(tokenizer(response)["input_ids"])[1:]
    labels = [-100] * len(prompt_ids) + response_ids
    return Example(torch.tensor(prompt_ids + response_ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long))


def encode_all_release(tokenizer: Any, records: list[dict]) -> tuple[list[Example], int]:
    """Encoded examples that keep a labelled token after the first position, and how many were dropped."""
    examples = [encode_release(tokenizer, r["prompt"], r["response"]) for r in records]
    kept = [e for e in examples if int((e.labels[1:] != -100).sum()) > 0]
    return kept, len(examples) - len(kept)
