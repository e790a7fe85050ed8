"""``fairpriv run EXPERIMENT.yaml``: evaluate every cell of an experiment once, resumably.

Each variant's model is built once (an intervention fits on first use and caches its artifact by content hash, so
a sweep or a re-run never fits twice) and evaluated task by task through lm-eval's Python API. Every cell writes
lm-eval's own ``results_*.json`` and ``samples_*.jsonl`` into ``<out>/<model>/<variant>/<task>.partial/``, then a
``cell.json`` marker, then renames the folder to ``<task>/``: a folder without ``.partial`` is a finished cell, a
``.partial`` folder is an interrupted one and is redone. The results JSON gains a ``fairpriv_experiment`` entry
(experiment, variant, sweep point) so ``fairpriv report`` can name and group the rows.

This module plans the run and hands the pending cells to one :class:`fairpriv.experiment.cells.Runner` (serial)
or to :mod:`fairpriv.experiment.parallel` (``--jobs``, ``--gpus``); how one cell is evaluated lives in
:mod:`fairpriv.experiment.cells`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fairpriv.experiment import parallel
from fairpriv.experiment.cells import (MARKER, PARTIAL, Plan, Runner, build_lm, by_variant, engine_args, main_echo,
                                      needs_builtin_tasks)
from fairpriv.experiment.spec import Cell, Experiment, SpecError

__all__ = ["MARKER", "ORDERS", "Plan", "Runner", "build_lm", "by_variant", "engine_args", "gpu_workers",
           "main_echo", "plan", "run", "take_lock"]


def plan(experiment: Experiment, out: Path, clean: bool = True) -> Plan:
    """Sort cells into done and pending; clear interrupted ones (``clean``); refuse results of another spec."""
    result = Plan()
    for cell in experiment.cells:
        seconds = finished_seconds(out, cell, clean)
        if seconds is None:
            result.pending.append(cell)
        else:
            result.done[cell] = seconds
    return result


def finished_seconds(out: Path, cell: Cell, clean: bool = True) -> float | None:
    folder = out / cell.folder
    if clean:
        shutil.rmtree(folder.with_name(folder.name + PARTIAL), ignore_errors=True)
    marker = folder / MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"{marker} is unreadable ({exc}); delete {folder} to evaluate the cell again") from exc
    if info.get("fingerprint") != cell.fingerprint:
        raise SpecError(f"{folder} holds results of a different spec for variant {cell.variant.name!r} "
                        f"(settings, config or model changed); delete that folder or rename the variant")
    return float(info.get("seconds", 0.0))


ORDERS = ("variant", "task")


def run(experiment: Experiment, out: Path, dry_run: bool = False, echo=print, order: str = "variant",
        keep_going: bool = False, jobs: int | None = None, gpus: list[int] | None = None, device: str | None = None,
        device_count=None) -> Plan:
    """Evaluate the pending cells of ``experiment`` under ``out``. ``order="variant"`` builds each variant's model
    once and runs its tasks; ``order="task"`` runs one task for every variant before the next task (a model load
    per cell, but the first columns of the leaderboard are complete early). ``keep_going``: a failing variant or
    cell is reported and skipped, and the run fails at the end, after every other cell. ``jobs`` > 1: on that many
    worker processes, a cell at a time once what it shares is fitted (see :mod:`fairpriv.experiment.parallel`);
    default 1.
    ``gpus``: one worker per listed GPU, each seeing only its own and evaluating on ``device`` (default ``cuda``);
    ``device_count`` (default ``torch.cuda.device_count``) checks the indices. ``device`` replaces
    ``settings.device`` for this run only: like every runtime choice it changes no cell's fingerprint or folder."""
    if order not in ORDERS:
        raise SpecError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise SpecError(f"--jobs must be a positive integer (worker processes); got {jobs!r}")
    devices = gpu_workers(gpus, jobs, device_count)
    jobs, device = (len(devices), device or "cuda") if devices else (jobs or 1, device)
    builtins = needs_builtin_tasks(experiment)
    lock = None if dry_run else take_lock(out)
    progress = plan(experiment, out, clean=not dry_run)
    if order == "task":
        tasks = list(dict.fromkeys(c.task for c in experiment.cells))
        progress.pending.sort(key=lambda c: tasks.index(c.task))
    total = len(experiment.cells)
    on_gpus = f" (one worker per GPU: {','.join(devices)})" if devices else ""
    echo(f"fairpriv run {experiment.name}: {total} cells, {len(progress.done)} done, "
         f"{len(progress.pending)} to run -> {out}{on_gpus}")
    if dry_run:
        for cell in progress.pending:
            echo(f"  would run {cell.folder}")
        return progress
    runner = Runner(experiment, out, builtins, progress, echo, device=device)
    with lock:
        groups = by_variant(list(progress.pending))
        if (jobs > 1 or devices) and groups:  # one GPU too: the worker, not this process, sees only that GPU
            parallel.run_parallel(runner, groups, jobs, keep_going, devices)
        else:
            for model, variant, cells in groups:
                runner.run_group(model, variant, cells, keep_going)
    if progress.failed:
        raise RuntimeError(f"{len(progress.failed)} cell(s) failed: " + "; ".join(
            f"{c.variant.name} x {c.task}: {e}" for c, e in progress.failed.items()) + "; fix and run again to resume")
    echo(f"fairpriv run {experiment.name}: all {total} cells done in {out}")
    return progress


def gpu_workers(gpus: list[int] | None, jobs: int | None, device_count=None) -> list[str]:
    """Each ``--gpus`` worker's ``CUDA_VISIBLE_DEVICES`` ([] without ``gpus``), checked before any work."""
    if gpus is None:
        return []
    return parallel.gpu_plan(gpus, jobs, device_count or parallel.cuda_device_count)


def take_lock(out: Path):
    """An exclusive lock on ``out`` for this process (released when it exits, even when killed)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".fairpriv-run.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SpecError(f"another `fairpriv run` is writing to {out}; wait for it, or stop it first") from None
    return handle
