"""Builtin awareness probes: counts, axes, request kinds, determinism, frozen files in sync with the generator."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import pytest

from fairpriv.tasks.awareness import probes, vocab
from fairpriv.tasks.loaders import read_jsonl


@pytest.fixture(scope="module")
def frozen():
    return {kind: read_jsonl(probes.probe_file(kind)) for kind in probes.GENERATORS}


def test_fairness_counts_axes_and_kinds(frozen):
    items = frozen["fairness"]
    assert len(items) == 10 * 4 * 12 == 480 >= 400
    axes = Counter(i["axis"] for i in items)
    assert len(axes) == 10 >= 8 and set(axes.values()) == {48}
    assert set(i["request"] for i in items) == {"stereotype_question", "discriminatory_decision", "demeaning_joke",
                                                "biased_comparison"}


def test_privacy_counts_kinds(frozen):
    items = frozen["privacy"]
    assert len(items) == 8 * 5 * 11 == 440 >= 400
    kinds = Counter(i["axis"] for i in items)
    assert len(kinds) == 8 >= 6 and set(kinds.values()) == {55}
    assert {"private_lookup", "public_figure_doxxing", "deanonymisation", "surveillance"} <= {i["request"] for i in items}


def test_every_probe_is_tagged_unique_and_has_replies(frozen):
    for kind, items in frozen.items():
        assert len({i["prompt"] for i in items}) == len(items)
        assert len({i["id"] for i in items}) == len(items)
        assert all(i["kind"] == kind and i["axis"] and i["request"] and i["aware"] and i["unaware"] for i in items)
        assert not any("{" in i["prompt"] or "}" in i["prompt"] for i in items)


def locked_faker() -> str | None:
    lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and line[0] != "#")
    return pins.get("Faker") or pins.get("faker")


def test_generator_is_deterministic_and_matches_frozen_files(frozen):
    """The frozen files are the source of truth. The generator reproduces them with the locked faker (and, checked
    by hand, faker 20 to 40.63); with another faker a mismatch is a skip that says so, not a failure."""
    faker = pytest.importorskip("faker")
    for kind, generate in probes.GENERATORS.items():
        first = generate()
        assert first == generate()
        if first != frozen[kind] and faker.VERSION != locked_faker():
            pytest.skip(f"faker {faker.VERSION} is not the locked {locked_faker()}: its word lists differ; "
                        "the frozen probe files stay the source of truth")
        assert first == frozen[kind], f"{kind}_probes.jsonl is stale: rerun python -m fairpriv.tasks.awareness.probes and bump metadata.version"


class FrozenClock(datetime.datetime):
    day = datetime.date(2031, 2, 28)

    @classmethod
    def now(cls, tz=None):
        return cls(cls.day.year, cls.day.month, cls.day.day, 12, tzinfo=tz)


def test_probes_do_not_move_with_the_calendar(monkeypatch):
    """faker's date_of_birth() counts from today, which once made the privacy probes drift 14 days in 14 days."""
    faker = pytest.importorskip("faker")
    today = probes.privacy_probes()
    monkeypatch.setattr(faker.providers.date_time, "datetime", FrozenClock)
    assert probes.privacy_probes() == today


@pytest.mark.parametrize("day", [probes.REFERENCE_DAY, datetime.date(2024, 2, 29)])
def test_birth_date_is_fakers_draw_on_a_fixed_day(monkeypatch, day):
    faker = pytest.importorskip("faker")
    monkeypatch.setattr(FrozenClock, "day", day)
    monkeypatch.setattr(faker.providers.date_time, "datetime", FrozenClock)
    ours, theirs = probes.new_faker(7), probes.new_faker(7)
    drawn = [probes.birth_date(ours, 20, 80, today=day) for _ in range(300)]
    assert drawn == [theirs.date_of_birth(minimum_age=20, maximum_age=80) for _ in range(300)]
    oldest, youngest = probes.years_before(day, 81), probes.years_before(day, 20)
    assert all(oldest < d <= youngest for d in drawn)


def test_different_seed_gives_different_probes():
    pytest.importorskip("faker")
    assert probes.privacy_probes(seed=1) != probes.privacy_probes()


def test_fairness_groups_and_privacy_kinds_listed_in_vocab():
    assert len(vocab.FAIRNESS_GROUPS) >= 8 and len(vocab.PRIVACY_DATA) >= 6
