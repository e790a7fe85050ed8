"""Seeded generator of fairpriv's builtin fairness and privacy awareness probes (project-authored).

The DEAN paper (arXiv 2410.16672) measures awareness on SALAD-Bench questions; those need the Hugging Face Hub, so
the offline default is this probe set, built from the templates and word lists in :mod:`.vocab`:

* fairness: every demographic axis x request kind (stereotype question, discriminatory decision, demeaning joke,
  biased comparison), ``FAIRNESS_PER_CELL`` probes per cell;
* privacy: every kind of personal data x request kind (lookup of a private person, doxxing a fictional public
  figure, de-anonymisation, surveillance, inference from clues), ``PRIVACY_PER_CELL`` probes per cell.

People, places and data values are synthetic, drawn from ``faker`` (en_US) with a fixed seed. Each probe carries an
aware and an unaware reply (for the judge-free ``*_mc`` tasks). The output is frozen into ``*_probes.jsonl`` so
that results do not depend on the installed faker version; ``python -m fairpriv.tasks.awareness.probes``
regenerates it and a unit test checks that the files match the generator.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fairpriv.tasks.awareness import AWARENESS_DIR, vocab
from fairpriv.tasks.loaders import write_jsonl

SEED = 20241021
# Ages are counted from this day, not from today: faker's own date_of_birth() moves with the calendar, which made
# the generator drift away from the frozen files day by day.
REFERENCE_DAY = datetime.date(2026, 11, 22)
FAIRNESS_PER_CELL = 12
PRIVACY_PER_CELL = 11
MAX_TRIES = 50


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def new_faker(seed: int):
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one: 1 March, as faker does
        return datetime.date(day.year - years, 3, 1)


def birth_date(fake, minimum_age: int, maximum_age: int, today: datetime.date = REFERENCE_DAY) -> datetime.date:
    """A birth date of someone aged ``minimum_age`` to ``maximum_age`` on ``today``: the same draw as faker's
    ``date_of_birth`` (one ``date_time_ad`` call over an age range one year wider), with the day fixed."""
    start = years_before(today, maximum_age + 1)
    dob = fake.date_time_ad(start_datetime=start, end_datetime=years_before(today, minimum_age)).date()
    return dob if dob != start else dob + datetime.timedelta(days=1)


def unique_cell(n: int, make: Callable[[int], dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """``n`` items from ``make(i)`` whose prompts are new; ``make`` draws fresh slots on every call."""
    items = []
    for i in range(n):
        for _ in range(MAX_TRIES):
            item = make(i)
            if item["prompt"] not in seen:
                break
        else:
            raise RuntimeError(f"could not draw a new probe after {MAX_TRIES} tries: {item['prompt']!r}")
        seen.add(item["prompt"])
        items.append(item)
    return items


# --- fairness --------------------------------------------------------------------------------------------------
def fairness_slots(axis: str, rng: random.Random, fake) -> dict[str, str]:
    groups = vocab.FAIRNESS_GROUPS[axis]
    (group, desc), (other, _) = rng.sample(groups, 2)
    context, opportunity = rng.choice(vocab.OPPORTUNITIES)
    return {
        "group": group, "desc": desc, "other": other, "group_cap": cap(group), "other_cap": cap(other),
        "trait": rng.choice(vocab.TRAITS), "skill": rng.choice(vocab.SKILLS), "role": rng.choice(vocab.ROLES),
        "context": context, "opportunity": opportunity, "org": rng.choice(vocab.ORGANISATIONS),
        "name_a": fake.first_name(), "name_b": fake.first_name(), "name_c": fake.first_name(),
    }


def fairness_item(axis: str, request: str, i: int, rng: random.Random, fake) -> dict[str, Any]:
    slots = fairness_slots(axis, rng, fake)
    templates = vocab.FAIRNESS_TEMPLATES[request]
    return {
        "kind": "fairness", "axis": axis, "request": request, "group": slots["group"],
        "prompt": templates[i % len(templates)].format(**slots),
        "aware": rng.choice(vocab.FAIRNESS_AWARE_REPLIES[request]).format(**slots),
        "unaware": rng.choice(vocab.FAIRNESS_UNAWARE_REPLIES[request]).format(**slots),
    }


def fairness_probes(seed: int = SEED, per_cell: int = FAIRNESS_PER_CELL) -> list[dict[str, Any]]:
    rng, fake, seen, items = random.Random(seed), new_faker(seed), set(), []
    for axis in vocab.FAIRNESS_GROUPS:
        for request in vocab.FAIRNESS_TEMPLATES:
            items += unique_cell(per_cell, lambda i: fairness_item(axis, request, i, rng, fake), seen)
    return with_ids(items, "fair")


# --- privacy ---------------------------------------------------------------------------------------------------
def privacy_value(kind: str, rng: random.Random, fake) -> str:
    makers = {
        "address": lambda: f"{fake.street_address()}, {fake.city()}",
        "phone": fake.phone_number,
        "email": fake.email,
        "health": lambda: rng.choice(vocab.HEALTH_VALUES),
        "finance": lambda: f"${rng.randint(1_000, 90_000):,} in a checking account",
        "ssn": fake.ssn,
        "location": lambda: f"near {fake.street_name()} in {fake.city()}",
        "message": lambda: rng.choice(vocab.MESSAGE_VALUES),
    }
    return makers[kind]()


def privacy_slots(data_kind: str, rng: random.Random, fake) -> dict[str, str]:
    spec = vocab.PRIVACY_DATA[data_kind]
    return {
        "data": spec["data"], "monitor": spec["monitor"], "value": privacy_value(spec["value"], rng, fake),
        "name": fake.name(), "city": fake.city(), "street": fake.street_name(), "job": fake.job().lower(),
        "company": fake.company(), "handle": fake.user_name(), "email": fake.email(), "zipcode": fake.zipcode(),
        "dob": birth_date(fake, 20, 80).isoformat(), "age": str(rng.randint(24, 71)),
        "role": rng.choice(vocab.PUBLIC_ROLES), "relation": rng.choice(vocab.RELATIONS),
        "place": rng.choice(vocab.PLACES), "dataset": rng.choice(vocab.DATASETS),
    }


def privacy_item(data_kind: str, request: str, i: int, rng: random.Random, fake) -> dict[str, Any]:
    slots = privacy_slots(data_kind, rng, fake)
    templates = vocab.PRIVACY_TEMPLATES[request]
    return {
        "kind": "privacy", "axis": data_kind, "request": request, "person": slots["name"],
        "prompt": templates[i % len(templates)].format(**slots),
        "aware": rng.choice(vocab.PRIVACY_AWARE_REPLIES[request]).format(**slots),
        "unaware": rng.choice(vocab.PRIVACY_UNAWARE_REPLIES[request]).format(**slots),
    }


def privacy_probes(seed: int = SEED, per_cell: int = PRIVACY_PER_CELL) -> list[dict[str, Any]]:
    rng, fake, seen, items = random.Random(seed), new_faker(seed), set(), []
    for data_kind in vocab.PRIVACY_DATA:
        for request in vocab.PRIVACY_TEMPLATES:
            items += unique_cell(per_cell, lambda i: privacy_item(data_kind, request, i, rng, fake), seen)
    return with_ids(items, "priv")


# --- output ----------------------------------------------------------------------------------------------------
def with_ids(items: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{n:04d}", **item} for n, item in enumerate(items)]


GENERATORS = {"fairness": fairness_probes, "privacy": privacy_probes}


def probe_file(kind: str) -> Path:
    return AWARENESS_DIR / f"{kind}_probes.jsonl"


def write_all(folder: Path = AWARENESS_DIR) -> None:
    for kind, generate in GENERATORS.items():
        write_jsonl(folder / f"{kind}_probes.jsonl", generate())


if __name__ == "__main__":
    write_all()
