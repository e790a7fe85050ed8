"""``fairpriv run --jobs N``: the pending cells of an experiment on N worker processes.

The unit of work is one cell on Hugging Face (a variant's vLLM cells go together: one engine start), so the workers
stay busy to the end. What cells share is made once (:class:`Schedule`): the first cell of a variant family runs
alone and fits (or finds) the family's artifact and what its sweep points share (DEAN's importance scores, CDA's
augmented data); then every other sweep point's first cell, each fitting its own point; then all remaining cells at
once, so two workers never fit the same artifact at once. A plain variant needs no fit: its cells start at once. A
worker keeps the last model it built for the next cell of the same variant (on 2 cores, two one-thread workers
evaluated 15-24% more log-likelihood requests per second than one two-thread process). Workers are spawned processes
(torch and lm-eval are not fork-safe); unless ``OMP_NUM_THREADS`` is set, the cores are split between them. Each
worker writes its cells exactly as a single run does (``.partial`` folder, marker, rename); the parent holds the
output folder's lock and reports every finished cell with the time left. A failure stops the other workers at once
(their unfinished cells are redone on the next run) unless ``keep_going`` is set; then the cells waiting on a failed
first cell are reported as skipped.

``--gpus 0,1``: one worker per listed GPU. Each worker sees exactly that one device (its ``CUDA_VISIBLE_DEVICES`` is
set in the worker's initialiser, before torch initialises CUDA there) and evaluates on ``cuda``; the indices count
the devices this process sees, so under ``CUDA_VISIBLE_DEVICES=2,3`` the GPU ``0`` is the machine's device 2.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fairpriv.experiment.cells import Plan, Runner, build_lm, main_echo
from fairpriv.experiment.spec import Cell, Experiment, SpecError

Group = tuple[str, object, list[Cell]]  # (model, variant, cells): one model build
Unit = list[Group]  # what one worker runs in one go
JOB = 0  # this worker's number, set by _start_worker
GPU = None  # in a worker of --gpus: the CUDA_VISIBLE_DEVICES entry it sees
FINISHED = None  # in a worker: the queue on which it reports each finished cell to the parent
KEPT: dict = {}  # in a worker: the last Hugging Face model it built, by (model, variant name)
SPAWN = multiprocessing.get_context("spawn")
VISIBLE = "CUDA_VISIBLE_DEVICES"
GPUS_NEED = "a comma-separated list of distinct GPU indices, e.g. --gpus 0,1"


def parse_gpus(text: str) -> list[int]:
    """``"0,1,3"`` -> ``[0, 1, 3]``; garbage, negative numbers and repeats are refused with the fix."""
    items = [item.strip() for item in str(text).split(",")]
    bad = [item for item in items if not item.isdigit()]
    if bad:
        where = f"{text!r}: " if len(items) > 1 else ""
        raise SpecError(f"{where}{bad[0]!r} is not a GPU index (a whole number >= 0); use {GPUS_NEED}")
    gpus = [int(item) for item in items]
    twice = sorted({g for g in gpus if gpus.count(g) > 1})
    if twice:
        raise SpecError(f"{text!r} lists GPU {twice[0]} twice (one worker per GPU); use {GPUS_NEED}")
    return gpus


def check_gpus(gpus: Sequence[int], count: int) -> None:
    """Refuse GPU indices this process cannot see (``count``: its ``torch.cuda.device_count()``)."""
    if not gpus:
        raise SpecError(f"--gpus lists no GPU; use {GPUS_NEED}")
    if count < 1:
        raise SpecError(f"--gpus {','.join(map(str, gpus))}: no CUDA device is visible here (torch.cuda."
                        "device_count() is 0); run without --gpus, or on a machine with a GPU")
    if max(gpus) >= count:
        raise SpecError(f"--gpus {','.join(map(str, gpus))}: GPU {max(gpus)} does not exist; this process sees "
                        f"{count} CUDA device{'s' * (count > 1)} (indices 0 to {count - 1})")


def cuda_device_count() -> int:
    """The CUDA devices torch sees (asked of NVML when it can, which does not initialise CUDA here; the workers are
    fresh processes either way)."""
    import torch

    return torch.cuda.device_count()


def worker_devices(gpus: Sequence[int], visible: str | None) -> list[str]:
    """Each worker's ``CUDA_VISIBLE_DEVICES``: the GPU's index, or its entry in ``visible`` when the parent sees a
    subset of the machine's devices (``visible`` is the parent's own ``CUDA_VISIBLE_DEVICES``)."""
    if not visible:
        return [str(g) for g in gpus]
    entries = [e.strip() for e in visible.split(",")]
    if max(gpus) >= len(entries):
        raise SpecError(f"--gpus: GPU {max(gpus)} is not among the {len(entries)} listed in {VISIBLE}={visible}; "
                        "list GPUs by their position in it, starting at 0")
    return [entries[g] for g in gpus]


def gpu_plan(gpus: Sequence[int], jobs: int | None, device_count: Callable[[], int] = cuda_device_count) -> list[str]:
    """Check ``--gpus`` against ``--jobs`` and the devices; return each worker's ``CUDA_VISIBLE_DEVICES``."""
    if jobs is not None and jobs != len(gpus):
        raise SpecError(f"--jobs {jobs} and --gpus {','.join(map(str, gpus))} disagree: --gpus runs one worker per "
                        f"GPU ({len(gpus)}); leave --jobs out")
    check_gpus(gpus, device_count())
    return worker_devices(gpus, os.environ.get(VISIBLE))


def chains(groups: list[Group]) -> list[list[Group]]:
    """The groups gathered per (model, variant family), in order of first appearance, run order kept within."""
    by_family: dict[tuple[str, str], list[Group]] = {}
    for group in groups:
        by_family.setdefault((group[0], group[1].family), []).append(group)
    return list(by_family.values())


def threads_per_job(jobs: int) -> int | None:
    """torch threads for each worker: the cores split between the jobs, or None when OMP_NUM_THREADS decides."""
    return None if os.environ.get("OMP_NUM_THREADS") else max(1, (os.cpu_count() or 1) // jobs)


def split(group: Group) -> list[Unit]:
    """A group's cells as units: each Hugging Face cell alone, its vLLM cells together (one engine start)."""
    model, variant, cells = group
    units = [[(model, variant, [cell])] for cell in cells if cell.engine == "hf"]
    engine = [cell for cell in cells if cell.engine != "hf"]
    return units + ([[(model, variant, engine)]] if engine else [])


@dataclass
class Schedule:
    """Units become ready as the first cells they wait on finish (see the module's docstring)."""

    ready: list[Unit] = field(default_factory=list)
    # a head unit's id -> (the units of its group's other cells, the groups whose heads it releases)
    waiting: dict[int, tuple[list[Unit], list[Group]]] = field(default_factory=dict)

    @classmethod
    def of(cls, groups: list[Group]) -> Schedule:
        schedule = cls()
        for chain in chains(groups):
            if chain[0][1].intervention is None:
                schedule.ready += [unit for group in chain for unit in split(group)]
            else:
                schedule.ready.append(schedule.head(chain[0], chain[1:]))
        return schedule

    def head(self, group: Group, others: Sequence[Group] = ()) -> Unit:
        """The group's first cell as a unit, after which its other cells (and ``others``' heads) are released."""
        model, variant, cells = group
        unit = [(model, variant, cells[:1])]
        self.waiting[id(unit)] = (split((model, variant, cells[1:])), list(others))
        return unit

    def finished(self, unit: Unit) -> list[Unit]:
        """What ``unit`` held back, now ready to run."""
        rest, others = self.waiting.pop(id(unit), ([], []))
        return rest + [self.head(group) for group in others]

    def dependents(self, unit: Unit) -> list[Cell]:
        """Every cell held back by ``unit``, directly or through the heads it would release."""
        rest, others = self.waiting.pop(id(unit), ([], []))
        return [cell for _, _, cells in [g for u in rest for g in u] + others for cell in cells]


def run_parallel(runner, groups: list[Group], jobs: int, keep_going: bool, devices: Sequence[str] = ()) -> None:
    """Run ``groups`` on ``jobs`` workers, each taking the next ready unit when free; record each finished cell in
    ``runner.progress`` as the workers report it, and report it through ``runner.echo``. ``devices``: one
    ``CUDA_VISIBLE_DEVICES`` per worker (``--gpus``), whose cells then run on ``runner.device``."""
    schedule = Schedule.of(groups)
    cells = {str(c.folder): c for _, _, group_cells in groups for c in group_cells}
    finished, running = SPAWN.Queue(), {}
    runner.progress.workers = min(jobs, len(cells))
    with worker_pool(runner.progress.workers, threads_per_job(jobs), finished, devices) as pool:
        def submit(unit: Unit) -> None:
            task = (runner.experiment, runner.out, runner.builtins, unit, keep_going, runner.device)
            running[pool.apply_async(_run_chain, (task,))] = unit

        for unit in schedule.ready:
            submit(unit)
        while running:
            record(runner, cells, _drain(finished), [])
            for result in [r for r in running if r.ready()]:
                unit, (done, failed) = running.pop(result), result.get()  # get() raises a worker's error here
                record(runner, cells, done, failed)
                if failed:
                    record(runner, cells, [], [(str(c.folder), f"skipped: {failed[0][1]}")
                                               for c in schedule.dependents(unit)])
                for later in schedule.finished(unit):
                    submit(later)


@contextlib.contextmanager
def worker_pool(size: int, threads: int | None, finished, devices: Sequence[str] = ()):
    """A pool of ``size`` spawned workers numbered 1..size; worker k sees the GPU ``devices[k - 1]`` (if given).
    Closed when the block ends; on an error the other workers are stopped at once (their ``.partial`` folders are
    redone on the next run)."""
    pool = SPAWN.Pool(size, _start_worker, (threads, SPAWN.Value("i", 0), finished, tuple(devices)))
    try:
        yield pool
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


def _start_worker(threads: int | None, counter, finished, devices: tuple[str, ...] = ()) -> None:
    global JOB, FINISHED, GPU
    FINISHED = finished
    with counter.get_lock():
        counter.value += 1
        JOB = counter.value
    if devices:  # before torch is imported here, so CUDA (initialised lazily) only ever sees this one device
        GPU = devices[(JOB - 1) % len(devices)]  # (a worker replaced after a crash takes a slot round again)
        os.environ[VISIBLE] = GPU
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _run_chain(task: tuple[Experiment, Path, bool, list[Group], bool, str | None]):
    """In a worker: run one unit (its groups in order); returns its (folder, seconds) done and (folder, error)
    failed."""
    experiment, out, builtins, chain, keep_going, device = task
    progress = Plan(pending=[c for _, _, cells in chain for c in cells])
    label = f"job {JOB}" if GPU is None else f"job {JOB} on GPU {GPU}"
    runner = Runner(experiment, out, builtins, progress, lambda m: main_echo(f"({label}) {m}"), job=JOB,
                    on_done=lambda cell, seconds: FINISHED.put((str(cell.folder), seconds)), device=device,
                    build=build_kept)
    for model, variant, cells in chain:
        runner.run_group(model, variant, cells, keep_going)
    return ([(str(c.folder), s) for c, s in progress.done.items()],
            [(str(c.folder), e) for c, e in progress.failed.items()])


def build_kept(model: str, variant, settings: dict, engine: str = "hf", on_vllm: bool = False):
    """In a worker: :func:`fairpriv.experiment.cells.build_lm`, but a Hugging Face model is kept for the worker's
    next cell of the same variant (one at a time; a vLLM engine is never kept)."""
    if engine != "hf":
        return build_lm(model, variant, settings, engine, on_vllm)
    key = (model, variant.name)
    if key not in KEPT:
        KEPT.clear()
        KEPT[key] = build_lm(model, variant, settings, engine, on_vllm)
    return KEPT[key]
