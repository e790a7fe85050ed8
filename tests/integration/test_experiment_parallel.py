"""``fairpriv run --jobs N`` on a tiny random model: the same cells and numbers as a serial run, family chains,
failures reported (with --keep-going) or stopping the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fairpriv.experiment import parallel, runner, spec
from fairpriv.experiment.spec import SpecError

TASKS = Path(__file__).resolve().parents[1] / "tasks" / "toy"
TOY_TASKS = ["fairpriv_test_toy", "fairpriv_test_toy_b"]


def experiment(tmp_path: Path, tiny_model: Path, tasks=TOY_TASKS, include=TASKS):
    raw = {"name": "par", "models": [str(tiny_model)], "tasks": tasks,
           "settings": {"batch_size": 2, "include_path": str(include)},
           "variants": {"zr": {"intervention": "zero-rows", "sweep": {"fraction": [0.25, 0.5]}},
                        "rows": {"intervention": "zero-rows", "config": {"module": "up_proj"}}}}
    return spec.parse(raw, source=str(tmp_path / "par.yaml"))


def accuracies(out: Path, exp) -> dict[str, float]:
    values = {}
    for cell in exp.cells:
        marker = json.loads((out / cell.folder / runner.MARKER).read_text())
        results = json.loads((out / cell.folder / marker["results"]).read_text())["results"]
        values[str(cell.folder)] = results[cell.task]["acc,none"]
    return values


def test_chains_keep_a_family_on_one_worker_in_run_order(tmp_path):
    exp = experiment(tmp_path, Path("m"))
    by_task = sorted(exp.cells, key=lambda c: TOY_TASKS.index(c.task))  # --order task
    chains = parallel.chains(runner.by_variant(by_task))
    names = [[f"{v.name}:{c.task[-1]}" for _, v, cells in chain for c in cells] for chain in chains]
    assert names == [["base:y", "base:b"], ["zr@fraction=0.25:y", "zr@fraction=0.5:y", "zr@fraction=0.25:b",
                                            "zr@fraction=0.5:b"], ["rows:y", "rows:b"]]


def labels(units) -> list[list[str]]:
    return [[f"{v.name}:{c.task[-1]}" for _, v, cells in unit for c in cells] for unit in units]


def test_the_schedule_fits_a_family_once_before_its_other_cells_spread_over_the_workers(tmp_path):
    exp = experiment(tmp_path, Path("m"))
    schedule = parallel.Schedule.of(runner.by_variant(list(exp.cells)))
    first = list(schedule.ready)
    assert labels(first) == [["base:y"], ["base:b"], ["zr@fraction=0.25:y"], ["rows:y"]]  # plain: no fit, all at once
    zr, rows = first[2], first[3]
    released = schedule.finished(zr)  # the family's first fit made: its point's other cell, the next point's head
    assert labels(released) == [["zr@fraction=0.25:b"], ["zr@fraction=0.5:y"]]
    assert labels(schedule.finished(released[1])) == [["zr@fraction=0.5:b"]]
    assert schedule.finished(released[0]) == [] and schedule.finished(first[0]) == []
    assert [f"{c.variant.name}:{c.task[-1]}" for c in schedule.dependents(rows)] == ["rows:b"]
    assert schedule.waiting == {}


def test_a_variants_vllm_cells_stay_one_unit():
    cells = [type("C", (), {"engine": e, "task": t})() for e, t in [("hf", "a"), ("vllm", "b"), ("vllm", "c")]]
    units = parallel.split(("m", "v", cells))
    assert [[c.task for _, _, cs in unit for c in cs] for unit in units] == [["a"], ["b", "c"]]


def test_threads_are_split_between_jobs_unless_omp_says(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 8)
    assert (parallel.threads_per_job(2), parallel.threads_per_job(3), parallel.threads_per_job(16)) == (4, 2, 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert parallel.threads_per_job(2) is None


def test_two_jobs_write_the_same_cells_and_numbers_as_one(tmp_path, tiny_model, fairpriv_home, fixture_plugin):
    exp = experiment(tmp_path, tiny_model)
    runner.run(exp, tmp_path / "serial", echo=lambda m: None)
    messages = []
    plan = runner.run(experiment(tmp_path, tiny_model), tmp_path / "par", echo=messages.append, jobs=2)
    assert len(plan.done) == 8 and not plan.pending and not plan.failed
    assert accuracies(tmp_path / "par", exp) == accuracies(tmp_path / "serial", exp)
    finished = [m for m in messages if " done] " in m]
    assert [m.split("]")[0] for m in finished] == [f"[{k}/8 done" for k in range(1, 9)]
    assert not list((tmp_path / "par").rglob("*.partial"))
    again = runner.run(experiment(tmp_path, tiny_model), tmp_path / "par", echo=messages.append, jobs=2)
    assert not again.pending and "8 cells, 8 done, 0 to run" in messages[-2]


def broken_tasks(tmp_path: Path) -> Path:
    """The toy tasks plus one whose data loader raises."""
    folder = tmp_path / "tasks"
    shutil.copytree(TASKS, folder)
    with open(folder / "toy_utils.py", "a") as fh:
        fh.write("\n\ndef broken(**_metadata):\n    raise ValueError('bad task data')\n")
    (folder / "bad.yaml").write_text("include: toy.yaml\ntask: fairpriv_test_toy_bad\n"
                                     "custom_dataset: !function toy_utils.broken\n")
    return folder


def test_a_failing_cell_is_reported_with_keep_going_and_stops_the_run_without(tmp_path, tiny_model, fairpriv_home,
                                                                             fixture_plugin):
    tasks, out = ["fairpriv_test_toy", "fairpriv_test_toy_bad"], tmp_path / "out"
    exp = experiment(tmp_path, tiny_model, tasks, broken_tasks(tmp_path))
    with pytest.raises(RuntimeError, match=r"4 cell\(s\) failed: .*fairpriv_test_toy_bad: .*bad task data"):
        runner.run(exp, out, echo=lambda m: None, keep_going=True, jobs=2)
    good = [c for c in exp.cells if c.task == "fairpriv_test_toy"]
    assert all((out / c.folder / runner.MARKER).is_file() for c in good)
    assert not list(out.rglob("*.partial")) and not any((out / c.folder).exists() for c in exp.cells if c not in good)
    shutil.rmtree(out)
    with pytest.raises(ValueError, match="bad task data"):
        runner.run(experiment(tmp_path, tiny_model, tasks, tmp_path / "tasks"), out, echo=lambda m: None, jobs=2)


@pytest.mark.parametrize("jobs", [0, -1, 1.5])
def test_jobs_must_be_a_positive_integer(tmp_path, jobs):
    with pytest.raises(SpecError, match="jobs must be a positive integer"):
        runner.run(experiment(tmp_path, Path("m")), tmp_path / "out", jobs=jobs)


def test_finished_cells_are_recorded_once_in_order_of_report(tmp_path):
    import queue

    exp = experiment(tmp_path, Path("m"))
    progress, messages = runner.Plan(pending=list(exp.cells)), []
    run = runner.Runner(exp, tmp_path, False, progress, messages.append)
    cells = {str(c.folder): c for c in exp.cells}
    reported = queue.Queue()
    for cell, seconds in [(exp.cells[0], 60.0), (exp.cells[2], 120.0)]:
        reported.put((str(cell.folder), seconds))
    parallel.record(run, cells, parallel._drain(reported, wait=0.01), [])
    assert parallel._drain(reported, wait=0.01) == []
    parallel.record(run, cells, [(str(exp.cells[0].folder), 60.0)], [(str(exp.cells[1].folder), "ValueError()")])
    assert list(progress.done.values()) == [60.0, 120.0] and progress.failed == {exp.cells[1]: "ValueError()"}
    assert len(progress.pending) == 5 and len(messages) == 2  # the cell reported twice counts once
    # when the second was reported, 6 were left: 2 of task y (mean of 60 s and 120 s: 3 min) and 4 of untimed task b
    assert messages[1] == ("[2/8 done] zr@fraction=0.25 x fairpriv_test_toy in 2.0 min (about 3 min left; 4 cells of "
                           "tasks not timed yet)")
    # now 5 are pending: 2 of task y (3 min of work) and 3 untimed; two workers share the 3 min
    assert progress.time_left(progress.pending) == "about 3 min left; 3 cells of tasks not timed yet"
    progress.workers = 2
    assert progress.time_left(progress.pending) == "about 2 min left; 3 cells of tasks not timed yet"


def test_a_worker_keeps_its_last_hf_model_for_the_next_cell_of_the_same_variant(tmp_path, tiny_model, fairpriv_home,
                                                                              fixture_plugin, monkeypatch):
    exp = experiment(tmp_path, tiny_model)
    monkeypatch.setattr(parallel, "KEPT", {})
    base, zr = exp.variants[0], exp.variants[1]
    first = parallel.build_kept(str(tiny_model), base, exp.settings)
    assert parallel.build_kept(str(tiny_model), base, exp.settings) is first
    other = parallel.build_kept(str(tiny_model), zr, exp.settings)
    assert other is not first and list(parallel.KEPT) == [(str(tiny_model), zr.name)]
