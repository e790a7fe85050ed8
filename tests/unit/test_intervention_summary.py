"""Interventions describe themselves to the report: ``summary(facts)`` and ``artifact_alias``.

The built-ins' summaries are checked on the facts of the published runs (results/runs/leaderboard) against the text
the published leaderboard shows; a plugin's summary key the report does not know gets a column of its own; a
plugin may not take a built-in's name.
"""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest

from fairpriv.interventions import Intervention, InterventionConfig
from fairpriv.report import text
from fairpriv.report.build import build
from fairpriv.report.collect import find_runs

RESULTS = Path(__file__).resolve().parents[2] / "results"
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"
PUBLISHED_RUNS = RESULTS / "runs" / "leaderboard" / "fairpriv_smollm2-135m-instruct-q4_1"
INFO_KEYS = ("epsilon", "delta", "accountant", "zeroed", "data")

# (run folder, intervention, what the published leaderboard shows for it)
PUBLISHED = [
    ("dp@epsilon=1", "dp", {"epsilon": "0.996", "delta": "0.001", "accountant": "rdp",
                            "data": "bold-wiki (text, n=512)"}),
    ("cda+dp", "dp", {"epsilon": "8", "delta": "0.00088", "accountant": "rdp", "data": "bold-wiki (text, n=512)"}),
    ("sft-privacy", "sft", {"epsilon": "none (not private)", "data": "builtin (privacy, n=430)"}),
    ("sft-text", "sft", {"epsilon": "none (not private)", "data": "bold-wiki (text, n=512)"}),
    ("cda", "cda", {"epsilon": "none (not private)", "data": "bold-wiki (text, n=512)"}),
    ("dean@p=0.0001,q=0.0001", "dean", {"zeroed": "1,258",
                                       "data": "fairness: builtin, privacy: builtin, utility: builtin"}),
    ("dean@p=0.0003,q=0.0003", "dean", {"zeroed": "4,003",
                                       "data": "fairness: builtin, privacy: builtin, utility: builtin"}),
]


def published_block(folder: str) -> dict:
    path = sorted((PUBLISHED_RUNS / folder).rglob("results_*.json"))[0]
    return json.loads(path.read_text())["config"]["fairpriv"]


def published_info(variant: str) -> dict[str, str]:
    with open(RESULTS / "leaderboard" / "leaderboard.csv", newline="", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["variant"] == variant)
    return {k: row[k] for k in INFO_KEYS if row[k]}


@pytest.mark.parametrize(("folder", "name", "shown"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_builtin_summary_of_a_published_run_is_what_the_leaderboard_shows(folder, name, shown):
    from fairpriv.interventions import registry

    block = published_block(folder)
    assert block["intervention"] == name and "summary" not in block  # recorded before summaries were
    assert published_info(folder) == shown
    assert registry.get(name).summary(block["facts"]) == shown  # the intervention itself (imports torch)
    assert registry.described(name).summary(block["facts"]) == shown  # what the report calls (no torch)


@pytest.mark.parametrize("name", ["dean", "sft", "dp", "cda"])
def test_builtins_inherit_what_the_report_reads(name):
    from fairpriv.interventions import registry

    light, cls = registry.described(name), registry.get(name)
    assert issubclass(cls, light) and cls.summary.__func__ is light.summary.__func__
    assert cls.artifact_alias == light.artifact_alias == ("mask" if name == "dean" else None)
    assert set(registry.DESCRIPTIONS) == set(registry.BUILTINS)


def test_base_class_summary_is_empty():
    assert Intervention.summary({"anything": 1}) == {}


def test_describing_a_builtin_imports_neither_torch_nor_lm_eval():
    code = ("import sys; from fairpriv.interventions.registry import described; "
            "assert described('dp').summary({'private': False}) == {'epsilon': 'none (not private)'}; "
            "print(sorted(m for m in ('torch', 'lm_eval') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the results block ---------------------------------------------------------------------------------------------
class Noted(Intervention):
    name = "noted"
    Config = InterventionConfig
    artifact_alias = "notes"

    @classmethod
    def summary(cls, facts):
        return {"rows zeroed": f"{facts['rows']:,}", "epsilon": 3}


def test_results_block_records_summary_and_alias():
    from fairpriv.models.variant import results_block

    art = SimpleNamespace(hash="h" * 64, path=Path("/a"), manifest={"facts": {"rows": 1234}})
    block = results_block(Noted(InterventionConfig()), art, "given", {"pretrained": "m"})
    assert block["summary"] == {"rows zeroed": "1,234", "epsilon": "3"} and block["artifact_alias"] == "notes"


def test_a_failing_summary_keeps_the_block_without_one(caplog):
    from fairpriv.models.variant import results_block

    with caplog.at_level(logging.WARNING, logger="fairpriv"):
        block = results_block(Noted(InterventionConfig()), None, None, {"pretrained": "m"})  # no facts: KeyError
    assert block["summary"] is None and "noted.summary() failed" in caplog.text


# --- the report ----------------------------------------------------------------------------------------------------
def write_run(folder: Path, name: str, block: dict | None, model_args: dict, value: float) -> None:
    """A minimal results file with one leaderboard column (fairness awareness, mc)."""
    config = {"model": f"{name}-hf" if block else "hf", "model_args": {"pretrained": MODEL, **model_args}}
    if block:
        config["fairpriv"] = block
    data = {"results": {"fairness_awareness_mc": {"awareness,none": value}}, "versions":
            {"fairness_awareness_mc": 1}, "config": config, "date": 1.0}
    folder.mkdir(parents=True)
    (folder / "results_2026-01-01T00-00-00.json").write_text(json.dumps(data))


def test_a_plugin_summary_shows_as_a_column(tmp_path):
    block = {"intervention": "zero-rows", "facts": {"rows_zeroed": 16}, "summary": {"rows zeroed": "16"},
             "artifact_hash": "abc", "artifact_alias": None}
    write_run(tmp_path / "base", "hf", None, {}, 0.5)
    write_run(tmp_path / "zr", "zero-rows", block, {"fraction": 0.1}, 0.6)
    board = build(find_runs(tmp_path), tmp_path / "out", tests=False)
    row = next(r for r in board.rows if r.intervention == "zero-rows")
    assert row.info == {"rows zeroed": "16"}
    assert board.info_columns() == [("rows zeroed", "rows zeroed")]
    assert "| rows zeroed |" in text.markdown(board).splitlines()[0]
    rows = list(csv.DictReader(text.to_csv(board).splitlines()))
    assert [r["rows zeroed"] for r in rows] == ["", "16"] and "epsilon" in rows[0]  # known ones stay in the CSV


def test_the_recorded_alias_names_the_artifact(tmp_path):
    block = {"intervention": "zero-rows", "artifact_hash": "0123456789abcdef", "artifact_alias": "rows",
             "summary": {}}
    write_run(tmp_path / "zr", "zero-rows", block, {"rows": "/some/folder"}, 0.6)
    (run,) = find_runs(tmp_path)
    assert run.variant_config == {"rows": "0123456789ab"}


def test_an_old_dean_run_gets_its_alias_and_summary_from_dean(tmp_path):
    facts = {"total": {"zeroed": 1258}, "scoring": {"data": {"fairness": {"source": "builtin"}}}}
    block = {"intervention": "dean", "artifact_hash": "0123456789abcdef", "facts": facts}
    write_run(tmp_path / "dean", "dean", block, {"mask": "/masks/m"}, 0.6)
    (run,) = find_runs(tmp_path)
    assert run.variant_config == {"mask": "0123456789ab"}
    assert run.summary == {"zeroed": "1,258", "data": "fairness: builtin"}


def test_a_runtime_registered_intervention_summarises_an_old_run(tmp_path, fresh_registry):
    fresh_registry.register("noted", Noted)
    write_run(tmp_path / "n", "noted", {"intervention": "noted", "facts": {"rows": 7}}, {}, 0.6)
    (run,) = find_runs(tmp_path)
    assert run.summary == {"rows zeroed": "7", "epsilon": "3"}
    write_run(tmp_path / "gone", "gone", {"intervention": "not-installed", "facts": {"rows": 7}}, {}, 0.6)
    assert find_runs(tmp_path / "gone")[0].summary == {}  # nothing installed to ask: no text columns


# --- the registry --------------------------------------------------------------------------------------------------
def test_a_plugin_may_not_take_a_builtin_name(fresh_registry, fixture_plugin, monkeypatch):
    from fairpriv.interventions.registry import InterventionNameClash

    real = next(ep for ep in entry_points(group=fresh_registry.ENTRY_POINT_GROUP) if ep.name == "zero-rows")
    clash = EntryPoint("dean", real.value, fresh_registry.ENTRY_POINT_GROUP)._for(real.dist)
    monkeypatch.setattr(fresh_registry, "entry_points", lambda group: [clash])
    with pytest.raises(InterventionNameClash) as err:
        fresh_registry.names()
    message = str(err.value)
    for part in ("fairpriv-fixture-plugin", "fairpriv_fixture_plugin:ZeroRows", "fairpriv.interventions.dean:Dean",
                 "Rename the entry point"):
        assert part in message
