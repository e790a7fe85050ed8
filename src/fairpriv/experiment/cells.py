"""How one cell of ``fairpriv run`` is evaluated (:mod:`fairpriv.experiment.runner` plans the run and describes the
folder layout). :class:`Runner` builds a variant's model once and evaluates its cells through lm-eval's Python API;
each cell's files go to ``<task>.partial/``, then the ``cell.json`` marker (:func:`write_marker`), then the rename
to ``<task>/``. :func:`build_lm` and :func:`engine_args` choose the backend (HF or vLLM) and its model arguments.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairpriv.atomic import write_text
from fairpriv.experiment.spec import Cell, Experiment, SpecError, Variant
from fairpriv.fit import free_memory
from fairpriv.models.vllm import BASE_KEYS, engine_keys
from fairpriv.names import unknown_task_message

log = logging.getLogger("fairpriv")
MARKER = "cell.json"
PARTIAL = ".partial"


@dataclass
class Plan:
    """Which cells are done (with their measured seconds) and which are pending."""

    done: dict[Cell, float] = field(default_factory=dict)
    pending: list[Cell] = field(default_factory=list)
    failed: dict[Cell, str] = field(default_factory=dict)  # with keep_going: cell -> error
    workers: int = 1  # processes evaluating the cells at once (--jobs): the time left is shared between them

    def eta(self, remaining: list[Cell]) -> float | None:
        """Seconds left for the remaining cells of timed tasks (each costs the mean of its task's finished cells,
        the sum shared between the workers); None before any cell has finished. Cells of tasks not timed yet are
        counted by :meth:`untimed`."""
        if not self.done:
            return None
        times = self.task_times()
        return sum(sum(times[c.task]) / len(times[c.task]) for c in remaining if c.task in times) / self.workers

    def untimed(self, remaining: list[Cell]) -> int:
        """How many of ``remaining`` belong to a task with no finished cell (their cost is unknown)."""
        times = self.task_times()
        return sum(c.task not in times for c in remaining)

    def time_left(self, remaining: list[Cell], after: str = "", more: str = "") -> str:
        """The progress note on ``remaining``: "about N min left<after>; K <more>cells of tasks not timed yet"
        (either part only when it applies; "" when neither does)."""
        eta, untimed = self.eta(remaining), self.untimed(remaining)
        notes = [f"about {eta / 60:.0f} min left{after}"] if eta is not None and len(remaining) > untimed else []
        notes += [f"{untimed} {more}cell{'s' * (untimed > 1)} of tasks not timed yet"] if untimed else []
        return "; ".join(notes)

    def task_times(self) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {}
        for cell, seconds in self.done.items():
            times.setdefault(cell.task, []).append(seconds)
        return times


def by_variant(cells: list[Cell]) -> list[tuple[str, Variant, list[Cell]]]:
    """Consecutive cells of the same model and variant share one model build."""
    groups: list[tuple[str, Variant, list[Cell]]] = []
    for cell in cells:
        if groups and groups[-1][0] == cell.model and groups[-1][1] is cell.variant:
            groups[-1][2].append(cell)
        else:
            groups.append((cell.model, cell.variant, [cell]))
    return groups


@dataclass
class Runner:
    experiment: Experiment
    out: Path
    builtins: bool  # whether tasks need lm-eval's built-in task index
    progress: Plan
    echo: Any
    job: int | None = None  # a worker of `--jobs`: announce cells without the run's count (the parent keeps it)
    on_done: Any = None  # called with (cell, seconds) after each finished cell
    device: str | None = None  # replaces settings.device (e.g. cuda under --gpus); not part of any fingerprint
    build: Any = None  # builds a cell's model (default build_lm; a --jobs worker keeps its last one)

    @property
    def settings(self) -> dict[str, Any]:
        """The spec's settings, with this run's device."""
        settings = self.experiment.settings
        return settings if self.device is None else {**settings, "device": self.device}

    def run_group(self, model: str, variant: Variant, cells: list[Cell], keep_going: bool) -> None:
        try:
            self.run_variant(model, variant, cells)
        except Exception as exc:
            if not keep_going:
                raise
            left = [c for c in cells if c in self.progress.pending]
            self.echo(f"FAILED {variant.name} ({len(left)} cell(s) skipped): {exc!r}")
            for cell in left:
                self.progress.pending.remove(cell)
                self.progress.failed[cell] = repr(exc)

    def run_variant(self, model: str, variant: Variant, cells: list[Cell]) -> None:
        """Per engine the variant's cells use, build its model once (fitting it if needed; a vLLM engine starts
        once), then evaluate those cells one by one."""
        for engine in dict.fromkeys(cell.engine for cell in cells):
            self.run_engine(model, variant, [c for c in cells if c.engine == engine], engine)

    def run_engine(self, model: str, variant: Variant, cells: list[Cell], engine: str) -> None:
        started = time.monotonic()
        on_vllm = any(c.engine == "vllm" for c in self.experiment.cells)
        lm = (self.build or build_lm)(model, variant, self.settings, engine, on_vllm)
        build_seconds = time.monotonic() - started
        for cell in cells:
            self.announce(cell)
            seconds = self.evaluate_cell(cell, lm, build_seconds if cell is cells[0] else 0.0)
            self.progress.pending.remove(cell)
            self.progress.done[cell] = seconds
            if self.on_done is not None:
                self.on_done(cell, seconds)
        del lm
        if engine != "hf":
            free_memory()  # the engine's memory back before the next variant's

    def announce(self, cell: Cell) -> None:
        if self.job is not None:
            self.echo(f"{cell.variant.name} x {cell.task} on {cell.model}: started")
            return
        note = self.progress.time_left([c for c in self.progress.pending if c is not cell], " after this one", "more ")
        left = f" ({note})" if note else ""
        self.echo(f"[{len(self.progress.done) + 1}/{len(self.experiment.cells)}] {cell.variant.name} x {cell.task}"
                  f" on {cell.model}{left}")

    def evaluate_cell(self, cell: Cell, lm, model_seconds: float = 0.0) -> float:
        """Evaluate one cell into its ``.partial`` folder, write the marker, rename; return the seconds spent,
        ``model_seconds`` (building the model, fitting included, charged to a variant's first cell) included."""
        folder = self.out / cell.folder
        partial = folder.with_name(folder.name + PARTIAL)
        shutil.rmtree(partial, ignore_errors=True)
        started = time.monotonic()
        try:
            results_file = self.evaluate_into(cell, lm, partial)
            seconds = time.monotonic() - started + model_seconds
            write_marker(partial, cell, results_file, seconds, model_seconds)
            partial.rename(folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return seconds

    def evaluate_into(self, cell: Cell, lm, folder: Path) -> Path:
        import lm_eval
        from lm_eval.loggers import EvaluationTracker

        settings = self.settings
        tracker = EvaluationTracker(output_path=str(folder))
        manager = task_manager(settings, cell.model_args, self.builtins)
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[cell.task], task_manager=manager, limit=settings["limit"], log_samples=True,
            evaluation_tracker=tracker, apply_chat_template=settings["chat_template"],
            metadata=settings["metadata"] or None, batch_size=settings["batch_size"], device=settings["device"],
            **seeds(settings["seed"]))
        return save(results, cell, self.experiment, tracker, folder)


def seeds(seed: int | None) -> dict[str, int]:
    """lm-eval's four seeds set to ``seed`` (None keeps lm-eval's defaults)."""
    names = ("random_seed", "numpy_random_seed", "torch_random_seed", "fewshot_random_seed")
    return {} if seed is None else {name: int(seed) for name in names}


def build_lm(model: str, variant: Variant, settings: dict[str, Any], engine: str = "hf", on_vllm: bool = False):
    """The lm-eval model of one variant on ``engine`` (an intervention fits or loads its cached artifact here), with
    the keys of ``settings.model_args`` that this engine takes (``on_vllm``: some cell of the run is on vLLM)."""
    import fairpriv  # noqa: F401  (registers the <name>-hf and <name>-vllm models)
    from lm_eval.api.registry import get_model

    cls = plain_hf() if engine == "hf" and not variant.intervention else get_model(variant.lm_eval_model(engine))
    extra = engine_args(settings["model_args"], engine, cls, on_vllm or engine == "vllm")
    args = {"pretrained": model, **extra, **variant.config}
    place = {"device": settings["device"]} if engine == "hf" or variant.intervention else {}  # plain vllm: no device
    return cls.create_from_arg_obj(args, {"batch_size": settings["batch_size"], **place})


def plain_hf() -> type:
    """The class of a variant without an intervention on HF: lm-eval's ``hf`` model with the log-likelihood scoring
    of ``<name>-hf`` (its cells keep the name ``hf`` in the results)."""
    from fairpriv.models.hf import PlainLM  # imports torch and lm_eval: only when used

    return PlainLM


def engine_args(model_args: dict[str, Any], engine: str, cls: type, on_vllm: bool) -> dict[str, Any]:
    """The keys of ``settings.model_args`` for ``engine``: HF's loading keys go to HF cells, vLLM's engine keys to
    vLLM cells, keys both know (dtype, max_length...) to both. A key HF does not know is an error when no cell of
    the run is on vLLM (``on_vllm``); otherwise it is left out of the HF cells, and vLLM checks it."""
    from fairpriv.models.hf import HF_KEYS as hf_keys  # imports torch and lm_eval: only when used

    if engine == "hf":
        unknown = sorted(k for k in model_args if k not in hf_keys)
        if unknown and not on_vllm:
            raise SpecError(f"settings.model_args {unknown} are not Hugging Face model arguments (HF accepts: "
                            f"{', '.join(sorted(hf_keys))}); vLLM's keys need backend: vllm")
        return {k: v for k, v in model_args.items() if k in hf_keys}
    return {k: v for k, v in model_args.items() if k in vllm_keys(cls) or k not in hf_keys}  # vLLM checks the rest


def vllm_keys(cls: type) -> frozenset[str]:
    """What lm-eval's VLLM (or a ``<name>-vllm`` class) and vLLM's engine accept, plus the base model's keys."""
    keys = getattr(cls, "engine_keys", None)
    return (keys if isinstance(keys, frozenset) else engine_keys(cls)) | set(BASE_KEYS)


def save(results: dict[str, Any], cell: Cell, experiment: Experiment, tracker, folder: Path) -> Path:
    """Write lm-eval's results and samples files, named as the CLI names them."""
    samples = results.pop("samples")
    results["config"].update(model=cell.lm_eval_model, model_args=cell.model_args)
    results["fairpriv_experiment"] = experiment_entry(experiment, cell)
    tracker.general_config_tracker.log_experiment_args(
        model_source=cell.lm_eval_model, model_args=cell.model_args, system_instruction=None,
        chat_template=tracker.general_config_tracker.chat_template, fewshot_as_multiturn=False)
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    found = sorted(folder.rglob("results_*.json"))
    if not found:  # lm-eval only warns when it cannot write
        raise OSError(f"lm-eval wrote no results file under {folder}; see the warning above")
    return found[-1]


def experiment_entry(experiment: Experiment, cell: Cell) -> dict[str, Any]:
    variant = cell.variant
    return {"experiment": experiment.name, "spec": experiment.source, "variant": variant.name,
            "family": variant.family, "sweep": list(variant.sweep) if variant.sweep else None,
            "task": cell.task, "fingerprint": cell.fingerprint}


def write_marker(folder: Path, cell: Cell, results_file: Path, seconds: float, model_seconds: float = 0.0) -> None:
    """``seconds``: the cell's whole cost; ``model_seconds``: the part spent building (and fitting) the model."""
    info = {"fingerprint": cell.fingerprint, "model": cell.model, "variant": cell.variant.name,
            "task": cell.task, "model_args": cell.model_args, "settings": cell.settings,
            "results": str(results_file.relative_to(folder)), "seconds": round(seconds, 1),
            "model_seconds": round(model_seconds, 1)}
    write_text(folder / MARKER, json.dumps(info, indent=2, sort_keys=True, default=str))


def needs_builtin_tasks(experiment: Experiment) -> bool:
    """Whether the experiment's tasks need lm-eval's built-in task index (~16 s); unknown names fail here, before
    any model loads."""
    import fairpriv  # noqa: F401  (adds fairpriv's task folder to every TaskManager)

    wanted = sorted({c.task for c in experiment.cells})
    for include_defaults in (False, True):
        known = set(task_manager(experiment.settings, {}, include_defaults).all_tasks)
        missing = [t for t in wanted if t not in known]
        if not missing:
            return include_defaults
    raise SpecError(f"{experiment.source}: {unknown_task_message(missing[0], known)}; your own task folder goes in "
                    "settings.include_path")


def task_manager(settings: dict[str, Any], model_args: dict[str, Any], include_defaults: bool):
    """A TaskManager whose task metadata is the model args plus the spec's metadata, as lm-eval's CLI makes it
    (tasks read e.g. ``pretrained`` from it to load the model's tokenizer)."""
    from lm_eval.tasks import TaskManager

    metadata = {**model_args, **settings["metadata"]} or None
    return TaskManager(include_path=settings["include_path"], include_defaults=include_defaults, metadata=metadata)


def main_echo(message: str) -> None:
    sys.stderr.write(message + "\n")  # one write: lines of parallel workers do not run into each other
    sys.stderr.flush()
