"""From result files to a :class:`~fairpriv.report.model.Leaderboard`: rows, values with CIs, deltas, paired tests.

Rows are keyed by (base model, intervention, variant config, --limit); a row gathers the newest run of each of its
tasks. A variant row is compared with the plain row of the same base model (and the same --limit) on the same items:
McNemar for per-item binary outcomes, a paired bootstrap for the rest (:mod:`fairpriv.report.paired`), then
Benjamini-Hochberg across the metrics of the row. Runs with ``--limit`` are left out unless asked for, and a column
never mixes task versions. A ``fairpriv judge`` file supersedes the results it re-judged for its tasks; each judged
value carries its judge, and values judged by different judges get no Δ and no test.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairpriv.report import paired
from fairpriv.report.collect import ReportError, Run
from fairpriv.report.columns import CATALOG, POOLED, ColumnSpec
from fairpriv.report.model import Column, Leaderboard, Row, Value
from fairpriv.report.stats import benjamini_hochberg

Z95 = 1.959963984540054


@dataclass
class RowRuns:
    """The runs behind one row: task -> newest run with that task."""

    key: tuple
    runs: dict[str, Run] = field(default_factory=dict)
    named: Run | None = None  # the run that names the row: a <name>-hf run rather than one of an exported folder

    def add(self, run: Run) -> list[str]:
        """Keep the newest run per task (a later judging of the same evaluation wins over it); return the tasks where
        another evaluation was replaced or ignored."""
        if self.named is None or (self.named.exported and not run.exported):
            self.named = run
        clashes = []
        for task in run.tasks():
            old = self.runs.get(task)
            if old is not None and old.origin != run.origin:
                clashes.append(task)
            if old is None or run.order > old.order:
                self.runs[task] = run
        return clashes


def build(runs: list[Run], out: Path, include_limited: bool = False, alpha: float = 0.05, seed: int = 0,
          tests: bool = True) -> Leaderboard:
    kept, notes = select(runs, include_limited)
    groups = group(kept, notes)
    specs = present(groups)
    columns = [column_of(spec, groups) for spec in specs]
    rows = [make_row(g, specs, out) for g in groups]
    first = {id(r): min(run.date for run in g.runs.values()) for r, g in zip(rows, groups)}
    board = Leaderboard(columns, sort_rows(rows, first), alpha, notes)
    if tests:
        compare_all(board, {id(r): g for r, g in zip(rows, groups)}, specs, alpha, seed)
    return board


def select(runs: list[Run], include_limited: bool) -> tuple[list[Run], list[str]]:
    limited = [r for r in runs if r.limit is not None]
    if include_limited or not limited:
        notes = [f"{len(limited)} run(s) used --limit: their rows are labelled and compare only with limited bases"]
        return runs, notes if limited else []
    kept = [r for r in runs if r.limit is None]
    if not kept:
        raise ReportError("every run under the folder used --limit; pass --include-limited to report them anyway")
    return kept, [f"left out {len(limited)} run(s) made with --limit (pass --include-limited to show them)"]


def row_key(run: Run, native: dict[tuple, tuple] | None = None) -> tuple:
    """The row a run belongs to; a run of an exported folder joins the row of the same artifact evaluated by
    ``<name>-hf`` (``native``: :func:`native_rows`), if there is one."""
    if run.exported and (native or {}).get(artifact_of(run)):
        return native[artifact_of(run)]
    config = tuple(sorted((k, str(v)) for k, v in run.variant_config.items()))
    return run.base_model, run.intervention, config, run.limit


def artifact_of(run: Run) -> tuple:
    return run.base_model, run.fairpriv.get("artifact_hash"), run.limit


def native_rows(runs: list[Run]) -> dict[tuple, tuple]:
    """The row of each (base model, artifact hash, limit) evaluated through ``<name>-hf``."""
    return {artifact_of(r): row_key(r) for r in runs if not r.exported and r.fairpriv.get("artifact_hash")}


def group(runs: list[Run], notes: list[str]) -> list[RowRuns]:
    groups: dict[tuple, RowRuns] = {}
    native = native_rows(runs)
    for run in runs:
        key = row_key(run, native)
        clashes = groups.setdefault(key, RowRuns(key)).add(run)
        if clashes:
            notes.append(f"{run.path}: {', '.join(clashes)} also evaluated by another run of the same variant; "
                         "the newest is shown")
    return list(groups.values())


def present(groups: list[RowRuns]) -> list[ColumnSpec]:
    tasks = {task for g in groups for task in g.runs}
    return [spec for spec in CATALOG if spec.task in tasks]


def column_of(spec: ColumnSpec, groups: list[RowRuns]) -> Column:
    versions = {g.runs[spec.task].version(spec.task): g.runs[spec.task].path for g in groups if spec.task in g.runs}
    if len(versions) > 1:
        shown = "; ".join(f"version {v} in {p}" for v, p in sorted(versions.items()))
        raise ReportError(f"column {spec.label!r} would mix versions of task {spec.task} ({shown}); re-run the old "
                          "evaluations with the current task, or report the folders separately")
    return Column(spec.key, spec.label, spec.group, spec.higher_is_better, spec.digits, spec.task, spec.metric,
                  next(iter(versions)))


def make_row(g: RowRuns, specs: list[ColumnSpec], out: Path) -> Row:
    first = g.named or next(iter(g.runs.values()))
    values = {s.key: value_of(g.runs[s.task], s, out) for s in specs if s.task in g.runs}
    values = {k: v for k, v in values.items() if v is not None}
    exp = first.experiment
    sweep = tuple(exp["sweep"]) if exp.get("sweep") else None
    return Row(first.base_model, exp.get("variant") or variant_name(first), first.intervention,
               first.variant_config, values, info_of(first, g), first.limit, sweep)


def variant_name(run: Run) -> str:
    if run.intervention is None and not run.variant_config:
        return "base"
    words = [run.intervention or run.config.get("model") or "model"]
    return " ".join(words + [f"{k}={v}" for k, v in sorted(run.variant_config.items())])


def value_of(run: Run, spec: ColumnSpec, out: Path) -> Value | None:
    value = number(run.metric(spec.task, spec.metric))
    if value is None:
        return None
    low, high = interval(run, spec, value)
    n = run.data.get("n-samples", {}).get(spec.task, {}).get("effective")
    return Value(value, low, high, relative(run.path, out), n, judge=run.judge(spec.task))


def interval(run: Run, spec: ColumnSpec, value: float) -> tuple[float | None, float | None]:
    if spec.ci == "bounds":
        return number(run.metric(spec.task, spec.metric + "_ci_low")), number(run.metric(spec.task, spec.metric + "_ci_high"))
    if spec.ci == "stderr":  # a normal interval, kept inside [0, 1] for accuracies
        err = number(run.metric(spec.task, spec.metric + "_stderr"))
        return (None, None) if err is None else (max(0.0, value - Z95 * err), min(1.0, value + Z95 * err))
    return None, None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def relative(path: Path, out: Path) -> str:
    return os.path.relpath(path.resolve(), out.resolve())


def info_of(run: Run, g: RowRuns) -> dict[str, str]:
    """The row's text columns: its intervention's summary (see :attr:`Run.summary`) and the judge of its tasks."""
    info, judge = {k: v for k, v in run.summary.items() if v}, judge_of(g)
    return {**info, "judge": judge} if judge else info


def judge_of(g: RowRuns) -> str:
    """The judge of the row's judged tasks; ``task: judge`` pairs when they differ."""
    judges = {t: r.judge(t) for t, r in sorted(g.runs.items()) if r.judge(t)}
    if len(set(judges.values())) <= 1:
        return next(iter(judges.values()), "")
    return "; ".join(f"{t}: {j}" for t, j in judges.items())


def sort_rows(rows: list[Row], first: dict[int, float]) -> list[Row]:
    """Each base model's plain row first, then its variants in the order they were first evaluated (a spec's order
    under ``fairpriv run --order task``), ties by name."""
    return sorted(rows, key=lambda r: (r.base_model, r.limit or 0, not r.is_base, first[id(r)], r.variant))


def compare_all(board: Leaderboard, groups: dict[int, RowRuns], specs: list[ColumnSpec], alpha: float,
                seed: int) -> None:
    for row in board.rows:
        base = board.base_of(row)
        if row.is_base or base is None:
            continue
        for spec in specs:
            if judged_apart(row, base, spec, board.notes):
                continue
            compare_value(row, base, spec, groups[id(row)], groups[id(base)], seed)
        tested = [v for v in row.values.values() if v.p_value is not None]
        for value, q in zip(tested, benjamini_hochberg([v.p_value for v in tested])):
            value.q_value, value.significant = q, q is not None and q < alpha


def judged_apart(row: Row, base: Row, spec: ColumnSpec, notes: list[str]) -> bool:
    """Whether the row's and its base's values of ``spec`` come from different judges (noted; then no Δ, no test)."""
    mine, theirs = row.values.get(spec.key), base.values.get(spec.key)
    if mine is None or theirs is None or mine.judge == theirs.judge:
        return False
    notes.append(f"{row.variant}: {spec.label} judged by {mine.judge}, its base row by {theirs.judge}: no Δ "
                 f"(judge the base with `fairpriv judge` too)")
    return True


def compare_value(row: Row, base: Row, spec: ColumnSpec, mine: RowRuns, theirs: RowRuns, seed: int) -> None:
    value, reference = row.values.get(spec.key), base.values.get(spec.key)
    if value is None or reference is None:
        return

    if not paired.same_pair(spec.task, spec.metric, metadata_of(theirs.runs[spec.task], spec.task),
                            metadata_of(mine.runs[spec.task], spec.task)):
        return  # gaps of two different named pairs: no delta, no test
    value.delta = value.value - reference.value
    result = paired_test(spec, theirs.runs[spec.task], mine.runs[spec.task], seed)
    if result is not None and number(result.p_value) is not None:  # NaN: the statistic is undefined on the items
        value.p_value, value.test = result.p_value, result.test


def paired_test(spec: ColumnSpec, base: Run, variant: Run, seed: int):
    if spec.task in POOLED:
        mine, theirs = pooled_samples(variant, spec.task), pooled_samples(base, spec.task)
        shared = [(task, theirs[task], mine[task]) for task in sorted(mine.keys() & theirs.keys())]
        return paired.compare_pooled(spec.metric, shared, seed=seed) if shared else None
    base_samples, variant_samples = base.samples(spec.task), variant.samples(spec.task)
    if base_samples is None or variant_samples is None:
        return None
    return paired.compare(spec.task, spec.metric, base_samples, variant_samples, seed=seed,
                          metadata=metadata_of(base, spec.task), variant_metadata=metadata_of(variant, spec.task))


def metadata_of(run: Run, task: str) -> dict[str, Any]:
    """The task config's ``metadata`` in the run's results file (e.g. a named ``pair``); {} when absent."""
    metadata = ((run.data.get("configs") or {}).get(task) or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def pooled_samples(run: Run, group_name: str) -> dict[str, list[dict[str, Any]]]:
    """The samples of a group's subtasks (e.g. every ``mmlu_offline_mini_*`` subject)."""
    prefix = POOLED[group_name]
    longer = [p for p in POOLED.values() if p != prefix and p.startswith(prefix)]
    tasks = [t for t in run.sample_files if t.startswith(prefix) and not any(t.startswith(p) for p in longer)]
    return {t: run.samples(t) for t in tasks}
