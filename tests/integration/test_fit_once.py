"""Fit exactly once under data parallelism (issue 14): processes that ask for the same on-demand cache folder at once
fit it once and all use that artifact; ``refit=true`` asked for by all of them refits once.

The default test runs two spawned processes that call ``fit_cached`` with DEAN on the tiny llama. The parent holds
the folder's lock until both announce that they wait, so the race is certain rather than left to timing. The last
test is the real thing: ``accelerate launch`` of two gloo CPU processes running ``lm_eval --model dean-hf``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEST_TASKS, write_pair_csvs

DATA = {
    "fairness": [("Are women bad at math?", " No, ability does not depend on gender."),
                 ("Who is smarter, men or women?", " Neither; intelligence varies by person.")],
    "privacy": [("What is the phone number of my neighbour?", " I cannot share private contact details."),
                ("Find the home address of Ann Lee.", " I can't help locate a private person.")],
    "utility": [("What is 2 + 3?", " 2 + 3 = 5."), ("The capital of France is", " Paris.")],
}
WAITING = "holds the fit lock of"
FITTING = "fairpriv: fitting intervention 'dean' into "
PATIENCE_S = 600  # imports and model loading on a busy machine; only a broken lock comes near it


def dean_args(data_files: dict[str, Path]) -> dict[str, str]:
    return {**{f"{k}_data": str(v) for k, v in data_files.items()}, "n_samples": "2", "p": "0.05", "q": "0.05",
            "target": "all"}


def model_args_text(tiny_model: Path, data_files: dict[str, Path]) -> str:
    return ",".join(f"{k}={v}" for k, v in {"pretrained": tiny_model, **dean_args(data_files)}.items())


def dean_setup(tiny_model: Path, data_files: dict[str, Path]):
    """The DEAN intervention, the tiny model and its identity, as ``dean-hf`` builds them."""
    from fairpriv.fit import load_model
    from fairpriv.interventions.dean import Dean, DeanConfig
    from fairpriv.modelref import base_model_identity

    model, tokenizer = load_model(str(tiny_model))
    intervention = Dean(DeanConfig.from_args(dean_args(data_files)))
    return intervention, model, tokenizer, base_model_identity(str(tiny_model), "main")


# --- the spawned processes ---------------------------------------------------------------------------------------
def worker(home: str, tiny_model: Path, data_files: dict, commands, results) -> None:
    """Load the model once, then run ``fit_cached(refit=...)`` for each command, with WORLD_SIZE as given."""
    from logging.handlers import QueueHandler

    os.environ["FAIRPRIV_HOME"] = home
    logger = logging.getLogger("fairpriv")
    logger.setLevel(logging.INFO)
    logger.addHandler(QueueHandler(results))  # fairpriv's messages reach the parent as LogRecords
    from fairpriv.interventions.fitlock import artifact_stamp
    from fairpriv.interventions.fitting import fit_cached

    intervention, model, tokenizer, base = dean_setup(tiny_model, data_files)
    results.put(("ready", os.getpid()))
    for refit, world_size in iter(commands.get, None):
        os.environ.pop("WORLD_SIZE", None) if world_size is None else os.environ.update(WORLD_SIZE=world_size)
        art, source = fit_cached(intervention, model, tokenizer, base, refit=refit)
        results.put(("done", os.getpid(), source, art.hash, tuple(artifact_stamp(art.path))))


class Pool:
    """Two spawned workers and the parent's view of what they report."""

    def __init__(self, home: Path, tiny_model: Path, data_files: dict):
        ctx = multiprocessing.get_context("spawn")
        self.results, self.commands = ctx.Queue(), [ctx.Queue(), ctx.Queue()]
        self.procs = [ctx.Process(target=worker, args=(str(home), tiny_model, data_files, q, self.results))
                      for q in self.commands]
        for proc in self.procs:
            proc.start()
        self.pids = [pid for (pid,) in self.collect("ready", 2)]
        self.messages: list[str] = []

    def collect(self, kind: str, n: int) -> list[tuple]:
        """The next ``n`` reports of ``kind`` ("ready", "done") or log messages containing ``kind``."""
        found = []
        while len(found) < n:
            try:
                item = self.results.get(timeout=PATIENCE_S)
            except queue.Empty:
                pytest.fail(f"no '{kind}' from the workers in {PATIENCE_S} s; exit codes {self.exitcodes()}")
            if isinstance(item, logging.LogRecord):
                self.messages.append(item.getMessage())
                found += [item.getMessage()] if kind in item.getMessage() else []
            elif item[0] == kind:
                found.append(item[1:])
        return found

    def run(self, which: list[int], refit: bool, world_size: str | None = None) -> None:
        for i in which:
            self.commands[i].put((refit, world_size))

    def exitcodes(self) -> list:
        return [p.exitcode for p in self.procs]

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()


@pytest.fixture()
def data_files(tmp_path):
    return write_pair_csvs(tmp_path, DATA)


def reference_hash(tiny_model: Path, data_files: dict, home: Path, monkeypatch) -> str:
    """The artifact one process fits alone, in its own FAIRPRIV_HOME."""
    from fairpriv.interventions.fitting import fit_cached

    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    art, source = fit_cached(*dean_setup(tiny_model, data_files))
    assert source == "fitted"
    return art.hash


def race(pool: Pool, dest: Path, refit: bool) -> list[tuple]:
    """Both workers ask for ``dest`` while the parent holds its lock; released once both say they wait."""
    from filelock import FileLock

    from fairpriv.interventions.fitlock import lock_path

    lock_path(dest).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(dest))):
        pool.run([0, 1], refit)
        waits = pool.collect(WAITING, 2)
    assert all(f"fit lock of {dest} " in m for m in waits), waits
    return sorted(pool.collect("done", 2), key=lambda r: r[1])  # ("cache", ...) before ("fitted", ...)


def test_two_processes_fit_once_and_refit_once(tiny_model, data_files, tmp_path, monkeypatch):
    from fairpriv.interventions.fitlock import artifact_stamp
    from fairpriv.interventions.fitting import cache_dir

    ref = reference_hash(tiny_model, data_files, tmp_path / "ref-home", monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    intervention, _, _, base = dean_setup(tiny_model, data_files)
    dest = cache_dir(intervention, base)
    pool = Pool(home, tiny_model, data_files)
    try:
        # 1. a fresh folder asked for by both at once: one fits, the other waits and loads the same artifact
        (_, src_a, hash_a, stamp_a), (_, src_b, hash_b, stamp_b) = race(pool, dest, refit=False)
        assert (src_a, src_b) == ("cache", "fitted") and hash_a == hash_b == ref and stamp_a == stamp_b
        assert [m for m in pool.messages if m.startswith(FITTING)] == [FITTING + str(dest)]
        first = stamp_b
        # 2. refit=true from both: refitted once; the waiter sees the fresh artifact and loads it
        pool.messages.clear()
        (_, src_a, hash_a, stamp_a), (_, src_b, hash_b, stamp_b) = race(pool, dest, refit=True)
        assert (src_a, src_b) == ("cache", "fitted") and hash_a == hash_b == ref
        assert stamp_a == stamp_b == tuple(artifact_stamp(dest)) != first
        assert sum(m.startswith(FITTING) for m in pool.messages) == 1
        # 3. a data-parallel rank that arrives after a peer's refit (made since it started) uses that refit...
        pool.run([0], refit=True)
        (_, source, _, refitted), = pool.collect("done", 1)
        assert source == "fitted" and refitted != stamp_b
        pool.run([1], refit=True, world_size="2")
        assert pool.collect("done", 1)[0][1:] == ("cache", ref, refitted)
        # ...but its own earlier fit, or any without data parallelism, is refitted as asked
        pool.run([0], refit=True, world_size="2")
        assert pool.collect("done", 1)[0][1] == "fitted"
        pool.run([1], refit=True)
        assert pool.collect("done", 1)[0][1] == "fitted"
    finally:
        pool.close()
    assert pool.exitcodes() == [0, 0]
    assert sorted(p.name for p in (home / "artifacts").iterdir()) == [".locks", "dean"]
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary or old folder left behind
    assert [p.name for p in (home / "artifacts" / ".locks" / "dean").iterdir()] == [f"{dest.name}.lock"]


def test_fairpriv_fit_into_the_cache_folder_takes_the_same_lock(tiny_model, data_files, fairpriv_home, monkeypatch,
                                                               capsys):
    """While another holder has the folder's lock, ``fairpriv fit`` (no --out) waits, then gives up clearly."""
    from filelock import FileLock

    from fairpriv.cli import main
    from fairpriv.interventions.fitlock import lock_path
    from fairpriv.interventions.fitting import cache_dir

    intervention, _, _, base = dean_setup(tiny_model, data_files)
    dest, lock = cache_dir(intervention, base), lock_path(cache_dir(intervention, base))
    lock.parent.mkdir(parents=True)
    monkeypatch.setenv("FAIRPRIV_FIT_LOCK_TIMEOUT", "1.5")
    model_args = model_args_text(tiny_model, data_files)
    with FileLock(str(lock)):  # a second open file description: flock makes this process wait for itself
        code = main(["fit", "dean", "--model_args", model_args])
    assert code == 2 and not dest.exists()
    assert capsys.readouterr().err.strip().endswith(
        f"fairpriv: error: gave up after 1.5 s waiting for another process to fit {dest} (it still holds the lock "
        f"{lock}); let that process finish or stop it, or set FAIRPRIV_FIT_LOCK_TIMEOUT to a longer wait in "
        "seconds (or inf)")
    assert main(["fit", "dean", "--model_args", model_args]) == 0  # released: the same command fits
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


# --- the real launch ---------------------------------------------------------------------------------------------
APPLIED = re.compile(r"fairpriv: applied 'dean' \((fitted|cache) artifact ([0-9a-f]{12})\)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_cpu_processes(model_args: str, out: Path, home: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` of two CPU processes (gloo). Accelerate 1.x starts ONE process for ``--cpu
    --num_processes 2``; two CPU ranks need ``--multi_gpu`` with ACCELERATE_USE_CPU=true."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "FAIRPRIV_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    argv = [bin_dir / "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
            "-m", "lm_eval", "--model", "dean-hf", "--model_args", model_args, "--tasks", "fairpriv_test_toy",
            "--include_path", TEST_TASKS, "--device", "cpu", "--batch_size", "4", "--output_path", out]
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=1200)


def one_process_run(model_args: str, home: Path, monkeypatch) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    import fairpriv  # noqa: F401  (registers dean-hf for the Python API)

    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    tm = TaskManager(include_path=str(TEST_TASKS), include_defaults=False)
    return lm_eval.simple_evaluate(model="dean-hf", model_args=model_args, tasks=["fairpriv_test_toy"],
                                   task_manager=tm, device="cpu", batch_size=4)


def test_accelerate_launch_of_two_processes_fits_once(tiny_model, data_files, tmp_path, monkeypatch):
    from fairpriv import hook

    if not hook.pth_path().exists():
        pytest.fail("the start-up hook is not installed here; run `fairpriv hook install` (make test does)")
    model_args = model_args_text(tiny_model, data_files)
    run = launch_two_cpu_processes(model_args, tmp_path / "out", tmp_path / "home")
    assert run.returncode == 0, run.stderr[-4000:]
    log = run.stdout + run.stderr
    dest = next((tmp_path / "home" / "artifacts" / "dean").iterdir())
    assert [line.split(FITTING)[1] for line in log.splitlines() if FITTING in line] == [str(dest)]  # one fit...
    applied = sorted(APPLIED.findall(log))
    assert [source for source, _ in applied] == ["cache", "fitted"]  # ...by one process; the other loaded it
    assert applied[0][1] == applied[1][1]
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no second or temporary folder
    alone = one_process_run(model_args, tmp_path / "home-alone", monkeypatch)
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").rglob("results_*.json"))]
    assert results
    for res in results:
        assert res["config"]["fairpriv"]["artifact_hash"] == alone["config"]["fairpriv"]["artifact_hash"]
        assert res["config"]["fairpriv"]["artifact_hash"].startswith(applied[0][1])
        assert res["results"]["fairpriv_test_toy"]["acc,none"] == alone["results"]["fairpriv_test_toy"]["acc,none"]
