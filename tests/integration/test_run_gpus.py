"""``fairpriv run --gpus 0,1``: one worker per GPU, each seeing only its own device, with cells, fingerprints and
numbers identical to a run without it. No GPU here: the device count is injected and the workers evaluate on CPU,
but their ``CUDA_VISIBLE_DEVICES`` is set exactly as on a GPU machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fairpriv import cli
from fairpriv.experiment import parallel, runner, spec
from fairpriv.experiment.spec import SpecError

TASKS = Path(__file__).resolve().parents[1] / "tasks" / "toy"


def experiment(tmp_path: Path, model: Path, device: str = "cpu"):
    raw = {"name": "gpus", "models": [str(model)], "tasks": ["fairpriv_test_toy"],
           "settings": {"batch_size": 2, "include_path": str(TASKS), "device": device},
           "variants": {"zr": {"intervention": "zero-rows", "sweep": {"fraction": [0.25, 0.5]}}}}
    return spec.parse(raw, source=str(tmp_path / "gpus.yaml"))


def two_gpus() -> int:
    return 2


# --- parsing and validation (pure) --------------------------------------------------------------------------------
def test_gpu_lists_parse_to_indices():
    assert parallel.parse_gpus("0,1,2,3") == [0, 1, 2, 3]
    assert parallel.parse_gpus(" 3, 1 ") == [3, 1]
    assert parallel.parse_gpus("0") == [0]


@pytest.mark.parametrize("text, message", [
    ("0,0", "'0,0' lists GPU 0 twice"), ("1,0,1", "lists GPU 1 twice"), ("a", "'a' is not a GPU index"),
    ("-1", "'-1' is not a GPU index"), ("", "'' is not a GPU index"), ("0,,1", "'' is not a GPU index"),
    ("cuda:0", "'cuda:0' is not a GPU index"), ("1.5", "'1.5' is not a GPU index"),
])
def test_bad_gpu_lists_are_refused_with_the_fix(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parallel.parse_gpus(text)
    assert "e.g. --gpus 0,1" in str(info.value)


@pytest.mark.parametrize("gpus, count, message", [
    ([5], 1, "GPU 5 does not exist; this process sees 1 CUDA device \\(indices 0 to 0\\)"),
    ([0, 2], 2, "GPU 2 does not exist; this process sees 2 CUDA devices \\(indices 0 to 1\\)"),
    ([0], 0, "no CUDA device is visible here"),
    ([], 4, "lists no GPU"),
])
def test_gpus_the_machine_lacks_are_refused(gpus, count, message):
    with pytest.raises(SpecError, match=message):
        parallel.check_gpus(gpus, count)


def test_workers_see_the_gpus_by_their_position_in_the_parents_visible_list():
    assert parallel.worker_devices([0, 1], None) == ["0", "1"]
    assert parallel.worker_devices([2, 0], "") == ["2", "0"]
    assert parallel.worker_devices([1, 0], "4,6") == ["6", "4"]  # the parent sees the machine's GPUs 4 and 6
    assert parallel.worker_devices([0], "GPU-aa12, GPU-bb34") == ["GPU-aa12"]
    with pytest.raises(SpecError, match="GPU 2 is not among the 2 listed in CUDA_VISIBLE_DEVICES=4,6"):
        parallel.worker_devices([2], "4,6")


def test_jobs_that_disagree_with_gpus_are_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    exp = experiment(tmp_path, Path("m"))
    with pytest.raises(SpecError, match="--jobs 3 and --gpus 0,1 disagree: --gpus runs one worker per GPU \\(2\\)"):
        runner.run(exp, tmp_path / "out", jobs=3, gpus=[0, 1], device_count=two_gpus)
    with pytest.raises(SpecError, match="GPU 5 does not exist"):
        runner.run(exp, tmp_path / "out", gpus=[5], device_count=lambda: 1)
    assert not (tmp_path / "out").exists()  # refused before the lock file, before any task index or model
    assert parallel.gpu_plan([0, 1], 2, two_gpus) == ["0", "1"]  # --jobs equal to the number of GPUs is fine
    assert parallel.gpu_plan([1], None, two_gpus) == ["1"]


@pytest.mark.parametrize("argv, message", [
    (["--gpus", "0,0"], "argument --gpus: '0,0' lists GPU 0 twice (one worker per GPU)"),
    (["--gpus", "a"], "argument --gpus: 'a' is not a GPU index (a whole number >= 0)"),
])
def test_the_cli_refuses_bad_gpu_lists_on_one_line(tmp_path, capsys, argv, message):
    assert cli.main(["run", str(tmp_path / "exp.yaml"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairpriv: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_the_cli_passes_gpus_and_leaves_jobs_unset(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(runner, "run", lambda experiment, out, **kw: seen.update(kw))
    (tmp_path / "exp.yaml").write_text("models: [m]\ntasks: [t]\n")
    assert cli.main(["run", str(tmp_path / "exp.yaml"), "--gpus", "1,0"]) == 0
    assert (seen["gpus"], seen["jobs"]) == ([1, 0], None)
    assert cli.main(["run", str(tmp_path / "exp.yaml"), "--jobs", "2"]) == 0
    assert (seen["gpus"], seen["jobs"]) == (None, 2)


# --- the spawned workers ------------------------------------------------------------------------------------------
def report_visible_devices(barrier) -> tuple[int, str | None]:
    """Run in a pool worker: wait until every worker holds a task, then say which worker this is and what it sees."""
    barrier.wait(timeout=120)
    return parallel.JOB, os.environ.get("CUDA_VISIBLE_DEVICES")


def test_each_worker_sees_exactly_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the parent sees two of the machine's GPUs
    devices = parallel.gpu_plan([1, 0], None, two_gpus)
    with parallel.SPAWN.Manager() as manager, parallel.worker_pool(2, 1, None, devices) as pool:
        barrier = manager.Barrier(2)  # both tasks wait for each other: each worker takes exactly one
        results = [pool.apply_async(report_visible_devices, (barrier,)) for _ in range(2)]
        seen = sorted(r.get(timeout=180) for r in results)
    assert seen == [(1, "6"), (2, "4")]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,6"  # the parent's own view is untouched


def marker(out: Path, cell) -> dict:
    return json.loads((out / cell.folder / runner.MARKER).read_text())


def test_gpus_change_no_fingerprint_folder_or_number(tmp_path, tiny_model, fairpriv_home, fixture_plugin, capfd,
                                                     monkeypatch):
    """The same experiment serially and with --gpus 0,1 (workers on CPU here): same cells, same fingerprints, same
    accuracies, and each worker announces the GPU it sees."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    runner.run(experiment(tmp_path, tiny_model), tmp_path / "serial", echo=lambda m: None)
    exp = experiment(tmp_path, tiny_model)
    plan = runner.run(exp, tmp_path / "gpus", echo=lambda m: None, gpus=[0, 1], device="cpu", device_count=two_gpus)
    assert len(plan.done) == 3 and not plan.pending and not plan.failed
    serial, gpus = tmp_path / "serial", tmp_path / "gpus"
    assert sorted(p.relative_to(gpus) for p in gpus.rglob(runner.MARKER)) == sorted(
        p.relative_to(serial) for p in serial.rglob(runner.MARKER))
    for cell in exp.cells:
        ours, theirs = marker(gpus, cell), marker(serial, cell)
        assert ours["fingerprint"] == theirs["fingerprint"] == cell.fingerprint
        assert ours["settings"] == theirs["settings"] and ours["model_args"] == theirs["model_args"]
        result = json.loads((gpus / cell.folder / ours["results"]).read_text())
        reference = json.loads((serial / cell.folder / theirs["results"]).read_text())
        assert result["results"] == reference["results"]
    err = capfd.readouterr().err
    assert "(job 1 on GPU 0)" in err or "(job 2 on GPU 1)" in err


def test_one_gpu_runs_on_a_worker_that_sees_it_on_cuda(tmp_path, monkeypatch):
    """--gpus 1 with --jobs left at its default: still a worker (only it may see the one GPU), on device cuda."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls = []
    monkeypatch.setattr(parallel, "run_parallel", lambda run, groups, jobs, keep_going, devices: calls.append(
        (run.device, jobs, list(devices), [c for _, _, cells in groups for c in cells])))
    exp = experiment(tmp_path, Path("m"))
    runner.run(exp, tmp_path / "out", echo=lambda m: None, gpus=[1], device_count=two_gpus)
    assert calls == [("cuda", 1, ["1"], list(exp.cells))]


def test_the_device_override_reaches_the_model_and_lm_eval_but_not_the_cell(tmp_path):
    exp = experiment(tmp_path, Path("m"))
    run = runner.Runner(exp, tmp_path, False, runner.Plan(), print, device="cuda")
    assert run.settings["device"] == "cuda" and exp.settings["device"] == "cpu"
    assert runner.Runner(exp, tmp_path, False, runner.Plan(), print).settings is exp.settings
    assert all(c.settings["device"] == "cpu" for c in exp.cells)
