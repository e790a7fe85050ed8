"""``fairpriv run --jobs N``: the pending cells of an experiment on N worker processes.

The unit of work is a family chain: every pending cell of one (model, spec variant), in run order. The sweep points
of a family run one after another on one worker, so what they share (DEAN's importance scores, CDA's augmented data)
is computed and cached once, and two workers never fit the same artifact at once. Workers are spawned processes
(torch and lm-eval are not fork-safe); unless ``OMP_NUM_THREADS`` is set, the cores are split between them. Each
worker writes its cells exactly as a single run does (``.partial`` folder, marker, rename); the parent holds the
output folder's lock and reports every finished cell with the time left. A failure stops the other workers at once
(their unfinished cells are redone on the next run) unless ``keep_going`` is set.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from pathlib import Path

from fairpriv.experiment.spec import Cell, Experiment

Group = tuple[str, object, list[Cell]]  # (model, variant, cells): one model build
JOB = 0  # this worker's number, set by _start_worker
FINISHED = None  # in a worker: the queue on which it reports each finished cell to the parent


def chains(groups: list[Group]) -> list[list[Group]]:
    """The groups gathered per (model, variant family), in order of first appearance, run order kept within."""
    by_family: dict[tuple[str, str], list[Group]] = {}
    for group in groups:
        by_family.setdefault((group[0], group[1].family), []).append(group)
    return list(by_family.values())


def threads_per_job(jobs: int) -> int | None:
    """torch threads for each worker: the cores split between the jobs, or None when OMP_NUM_THREADS decides."""
    return None if os.environ.get("OMP_NUM_THREADS") else max(1, (os.cpu_count() or 1) // jobs)


def run_parallel(runner, groups: list[Group], jobs: int, keep_going: bool) -> None:
    """Run ``groups`` on ``jobs`` workers, each taking the next family chain when free; record each finished cell in
    ``runner.progress`` as the workers report it, and report it through ``runner.echo``."""
    work = chains(groups)
    cells = {str(c.folder): c for _, _, group_cells in groups for c in group_cells}
    context = multiprocessing.get_context("spawn")
    finished, counter = context.Queue(), context.Value("i", 0)
    pool = context.Pool(min(jobs, len(work)), _start_worker, (threads_per_job(jobs), counter, finished))
    try:
        running = [pool.apply_async(_run_chain, ((runner.experiment, runner.out, runner.builtins, chain,
                                                   keep_going),)) for chain in work]
        while running:
            record(runner, cells, _drain(finished), [])
            for result in [r for r in running if r.ready()]:
                running.remove(result)
                record(runner, cells, *result.get())  # get() raises a worker's error here
        pool.close()
    except BaseException:
        pool.terminate()  # stop the other workers now; their .partial folders are redone on the next run
        raise
    finally:
        pool.join()


def _drain(finished, wait: float = 0.5) -> list[tuple[str, float]]:
    """The (folder, seconds) the workers reported since the last call (waiting up to ``wait`` for the first)."""
    items: list[tuple[str, float]] = []
    try:
        items.append(finished.get(timeout=wait))
        while True:
            items.append(finished.get_nowait())
    except queue.Empty:
        return items


def record(runner, cells: dict[str, Cell], done: list[tuple[str, float]], failed: list[tuple[str, str]]) -> None:
    """Move a chain's finished and failed cells out of ``runner.progress.pending`` and report each."""
    progress = runner.progress
    for folder, seconds in done:
        cell = cells[folder]
        if cell not in progress.pending:  # reported twice: by the queue and with its chain's result
            continue
        progress.pending.remove(cell)
        progress.done[cell] = seconds
        left = progress.time_left(progress.pending)
        runner.echo(f"[{len(progress.done)}/{len(runner.experiment.cells)} done] {cell.variant.name} x {cell.task} "
                    f"in {seconds / 60:.1f} min{f' ({left})' if left else ''}")
    for folder, error in failed:
        cell = cells[folder]
        progress.pending.remove(cell)
        progress.failed[cell] = error


def _start_worker(threads: int | None, counter, finished) -> None:
    global JOB, FINISHED
    FINISHED = finished
    with counter.get_lock():
        counter.value += 1
        JOB = counter.value
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _run_chain(task: tuple[Experiment, Path, bool, list[Group], bool]):
    """In a worker: run one family chain; returns its (folder, seconds) done and (folder, error) failed."""
    from fairpriv.experiment.runner import Plan, Runner, main_echo

    experiment, out, builtins, chain, keep_going = task
    progress = Plan(pending=[c for _, _, cells in chain for c in cells])
    runner = Runner(experiment, out, builtins, progress, lambda m: main_echo(f"(job {JOB}) {m}"), job=JOB,
                    on_done=lambda cell, seconds: FINISHED.put((str(cell.folder), seconds)))
    for model, variant, cells in chain:
        runner.run_group(model, variant, cells, keep_going)
    return ([(str(c.folder), s) for c, s in progress.done.items()],
            [(str(c.folder), e) for c, e in progress.failed.items()])
