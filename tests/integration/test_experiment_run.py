"""``fairpriv run`` on a tiny random model: cells written once, resumed after an interruption, stale specs refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairpriv.experiment import runner, spec
from fairpriv.experiment.spec import SpecError

TASKS = Path(__file__).resolve().parents[1] / "tasks"


def experiment(tmp_path: Path, tiny_model: Path, fraction: float = 0.25):
    raw = {"name": "toyexp", "models": [str(tiny_model)], "tasks": ["fairpriv_test_toy"],
           "settings": {"batch_size": 2, "include_path": str(TASKS), "seed": 3},
           "variants": {"zr": {"intervention": "zero-rows", "sweep": {"fraction": [fraction, 0.5]}}}}
    return spec.parse(raw, source=str(tmp_path / "toyexp.yaml"))


def results_of(out: Path, cell) -> dict:
    folder = out / cell.folder
    marker = json.loads((folder / runner.MARKER).read_text())
    return json.loads((folder / marker["results"]).read_text())


def test_run_writes_every_cell_once_and_resumes(tmp_path, tiny_model, fairpriv_home, fixture_plugin, monkeypatch):
    exp, out = experiment(tmp_path, tiny_model), tmp_path / "out"
    original, calls = runner.Runner.evaluate_into, []

    def interrupt_second(self, cell, lm, folder):
        calls.append(cell.variant.name)
        if len(calls) == 2:
            (folder / "half-written.json").parent.mkdir(parents=True, exist_ok=True)
            (folder / "half-written.json").write_text("{")
            raise KeyboardInterrupt
        return original(self, cell, lm, folder)

    monkeypatch.setattr(runner.Runner, "evaluate_into", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        runner.run(exp, out, echo=lambda m: None)
    first, second, third = exp.cells
    assert (out / first.folder / runner.MARKER).is_file()
    assert not (out / second.folder).exists() and not list(out.rglob("*.partial"))  # no half cell left behind

    monkeypatch.setattr(runner.Runner, "evaluate_into", original)
    messages = []
    plan = runner.run(experiment(tmp_path, tiny_model), out, echo=messages.append)
    assert "3 cells, 1 done, 2 to run" in messages[0]
    assert any(m.startswith("[2/3] zr@fraction=0.25") for m in messages)
    assert len(plan.done) == 3 and not plan.pending

    markers = [json.loads((out / c.folder / runner.MARKER).read_text()) for c in exp.cells]
    assert all(m["seconds"] >= m["model_seconds"] >= 0 for m in markers)  # model build (and fit) charged to a cell

    again = runner.run(experiment(tmp_path, tiny_model), out, echo=messages.append)
    assert "3 cells, 3 done, 0 to run" in messages[-2] and not again.pending


def test_results_files_are_lm_eval_files_with_the_experiment_entry(tmp_path, tiny_model, fairpriv_home,
                                                                    fixture_plugin):
    exp, out = experiment(tmp_path, tiny_model), tmp_path / "out"
    runner.run(exp, out, echo=lambda m: None)
    base, point, _ = exp.cells
    plain = results_of(out, base)
    assert plain["config"]["model"] == "hf" and plain["config"]["model_args"] == {"pretrained": str(tiny_model)}
    assert plain["config"]["random_seed"] == 3 and "fairpriv" not in plain["config"]
    swept = results_of(out, point)
    assert swept["config"]["model"] == "zero-rows-hf"
    assert swept["config"]["model_args"] == {"pretrained": str(tiny_model), "fraction": 0.25}
    assert swept["config"]["fairpriv"]["intervention"] == "zero-rows"
    metadata = swept["configs"]["fairpriv_test_toy"]["metadata"]  # the model args reach the task, as in the CLI
    assert metadata["pretrained"] == str(tiny_model) and metadata["fraction"] == 0.25
    assert swept["fairpriv_experiment"] == {
        "experiment": "toyexp", "spec": str(tmp_path / "toyexp.yaml"), "variant": "zr@fraction=0.25",
        "family": "zr", "sweep": ["fraction", 0.25], "task": "fairpriv_test_toy", "fingerprint": point.fingerprint}
    samples = list((out / point.folder).rglob("samples_fairpriv_test_toy_*.jsonl"))
    assert len(samples) == 1 and len(samples[0].read_text().splitlines()) == 8  # the toy task's 8 docs
    assert swept["results"]["fairpriv_test_toy"]["acc,none"] * 8 == round(swept["results"]["fairpriv_test_toy"]["acc,none"] * 8)


def test_a_changed_spec_never_reuses_old_cells(tmp_path, tiny_model, fairpriv_home, fixture_plugin):
    out = tmp_path / "out"
    exp = experiment(tmp_path, tiny_model)
    runner.run(spec.parse({"models": [str(tiny_model)], "tasks": ["fairpriv_test_toy"],
                           "settings": {"batch_size": 2, "include_path": str(TASKS)}}), out, echo=lambda m: None)
    with pytest.raises(SpecError, match="different spec for variant 'base'"):
        runner.run(exp, out, echo=lambda m: None)  # seed 3 now: base results were made without it


def test_unknown_task_fails_before_any_model_loads(tmp_path, tiny_model):
    exp = spec.parse({"models": [str(tiny_model)], "tasks": ["fairpriv_test_toyy"],
                      "settings": {"include_path": str(TASKS)}}, source="exp.yaml")
    with pytest.raises(SpecError, match="unknown task 'fairpriv_test_toyy'"):
        runner.run(exp, tmp_path / "out", echo=lambda m: None)


def test_task_order_runs_one_task_for_every_variant_first(tmp_path, tiny_model, fairpriv_home, fixture_plugin):
    raw = {"name": "two", "models": [str(tiny_model)], "tasks": ["fairpriv_test_toy", "fairpriv_test_toy_b"],
           "settings": {"batch_size": 2, "include_path": str(TASKS)},
           "variants": {"zr": {"intervention": "zero-rows"}}}
    exp, messages = spec.parse(raw, source=str(tmp_path / "two.yaml")), []
    runner.run(exp, tmp_path / "out", echo=messages.append, order="task")
    started = [m.split("] ", 1)[1].split(" on ")[0] for m in messages if m.startswith("[")]
    assert started == ["base x fairpriv_test_toy", "zr x fairpriv_test_toy", "base x fairpriv_test_toy_b",
                       "zr x fairpriv_test_toy_b"]
    notes = [m.partition(" (")[2] for m in messages if m.startswith("[")]
    assert notes == ["3 more cells of tasks not timed yet)", "2 more cells of tasks not timed yet)",
                     "1 more cell of tasks not timed yet)", ""]  # no guess from another task's times
    with pytest.raises(SpecError, match="unknown order"):
        runner.run(exp, tmp_path / "out", order="random")


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    with runner.take_lock(tmp_path / "out"):
        with pytest.raises(SpecError, match="another `fairpriv run` is writing"):
            runner.take_lock(tmp_path / "out")
    runner.take_lock(tmp_path / "out").close()  # free again once the first run ends


def test_keep_going_skips_a_failing_cell_and_fails_at_the_end(tmp_path, tiny_model, fairpriv_home, fixture_plugin,
                                                             monkeypatch):
    exp, out = experiment(tmp_path, tiny_model), tmp_path / "out"
    original = runner.Runner.evaluate_into

    def broken_quarter(self, cell, lm, folder):
        if cell.variant.name == "zr@fraction=0.25":
            raise ValueError("bad task data")
        return original(self, cell, lm, folder)

    monkeypatch.setattr(runner.Runner, "evaluate_into", broken_quarter)
    messages = []
    with pytest.raises(RuntimeError, match=r"1 cell\(s\) failed: zr@fraction=0.25 x fairpriv_test_toy: .*bad task data"):
        runner.run(exp, out, echo=messages.append, keep_going=True)
    assert any(m.startswith("FAILED zr@fraction=0.25") for m in messages)
    base, quarter, half = exp.cells
    assert (out / base.folder / runner.MARKER).is_file() and (out / half.folder / runner.MARKER).is_file()
    assert not (out / quarter.folder).exists()
    with pytest.raises(ValueError, match="bad task data"):  # without keep_going the first failure stops the run
        runner.run(experiment(tmp_path, tiny_model), out, echo=lambda m: None)
