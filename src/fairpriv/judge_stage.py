"""``fairpriv judge RUN_DIR --judge NAME [--judge_args k=v,...]``: judge logged awareness generations again.

The awareness tasks judge their generations inside the evaluation (the ``judged`` filter). This stage runs a judge
later, on the generations that ``--log_samples`` kept, without generating again: for every ``results_<time>.json``
under ``RUN_DIR`` (one lm-eval output folder or a ``fairpriv run`` tree; unfinished ``.partial`` cells are left
alone) and every judged awareness task in it, it reads ``samples_<task>_<time>.jsonl[.gz]``, judges each
record's raw response (``resps``) against its document (``doc``: prompt, kind, axis), recomputes the per-sample
metrics with the task's ``process_results`` and the task's metrics with the task's own aggregations (both named in
the results' ``configs``), and writes, next to the old files, which it never touches:

* ``samples_<task>_<time>.judged-<judge>.jsonl``: the same records with the new verdicts and metric values;
* ``results_<time>.judged-<judge>.json``: the old results file restricted to the re-judged tasks, with the new
  numbers, the judge in ``configs.<task>.metadata`` and a ``fairpriv_judging`` entry (judge, options, source file
  and its sha256). ``fairpriv report`` shows these numbers in place of the old ones, labelled with the judge.

Every file is written to a temporary name and renamed; running the stage again replaces its own outputs. Nothing
is written before the arguments are checked, the samples read and the judge loaded. MD-Judge runs on transformers
(``backend=hf``, the default) or on vLLM (``--judge_args backend=vllm``, :mod:`fairpriv.models.vllm_judge`: the same
tokens in and out, all of a task's prompts in one engine call).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fairpriv.atomic import write_text as write_atomic
from fairpriv.hashing import sha256_file
from fairpriv.interventions.base import ConfigError
from fairpriv.metrics import awareness
from fairpriv.names import did_you_mean
from fairpriv.scorers import JUDGES, get_judge
from fairpriv.scorers.judging import first_text, verdict_records
from fairpriv.scorers.md_judge import DEFAULT_MODEL, MAX_NEW_TOKENS, check_device, check_dtype, pick_device

JUDGED = ".judged-"
PARTIAL = ".partial"
JUDGE_FILTER = "judge_responses"  # the awareness tasks' filter function (fairpriv.scorers.judging)
RULE_CHUNK = 256  # documents per progress step for judges without a batch size
MD_JUDGE_KEYS = ("pretrained", "batch_size", "device", "dtype", "max_new_tokens", "backend")
BACKENDS = ("hf", "vllm")


class JudgeStageError(ValueError):
    """A run folder the judge stage cannot use; the message names the folder or file and the fix."""


# --- judge arguments ---------------------------------------------------------------------------------------------
def parse_pairs(text: str) -> dict[str, str]:
    """``a=1,b=x`` -> {"a": "1", "b": "x"}; a part without ``=`` is an error."""
    pairs = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--judge_args part {part!r} is not key=value; write e.g. pretrained=PATH,device=cuda:0")
        pairs[key.strip()] = value.strip()
    return pairs


def positive(key: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--judge_args {key}={value!r} is not allowed; use a whole number >= 1")
    return int(value)


def check_keys(judge: str, pairs: dict[str, str], allowed: tuple[str, ...]) -> None:
    for key in pairs:
        if key not in allowed:
            accepted = f"it accepts {', '.join(allowed)}" if allowed else "it takes no --judge_args"
            raise ConfigError(f"unknown --judge_args key {key!r} for judge {judge!r}; {accepted}."
                              f"{did_you_mean(key, allowed)}")


def md_judge_options(pairs: dict[str, str]) -> dict[str, Any]:
    backend = pairs.get("backend", "hf")
    if backend not in BACKENDS:
        raise ConfigError(f"--judge_args backend={backend!r} is unknown; use backend=hf (transformers, the default) "
                          f"or backend=vllm.{did_you_mean(backend, BACKENDS)}")
    return vllm_judge_options(pairs) if backend == "vllm" else hf_judge_options(pairs)


def vllm_judge_options(pairs: dict[str, str]) -> dict[str, Any]:
    """MD-Judge on vLLM: the model, dtype and token budget; vLLM batches and places the model itself."""
    for key in ("device", "batch_size"):
        if key in pairs:
            raise ConfigError(f"--judge_args {key}= does not apply with backend=vllm (vLLM batches and places the "
                              "model itself; choose GPUs with CUDA_VISIBLE_DEVICES): drop it")
    try:
        dtype = check_dtype(pairs.get("dtype"), "--judge_args dtype")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    tokens = positive("max_new_tokens", pairs.get("max_new_tokens", str(MAX_NEW_TOKENS)))
    return {"model": pairs.get("pretrained") or DEFAULT_MODEL, "dtype": dtype, "max_new_tokens": tokens,
            "backend": "vllm"}


def hf_judge_options(pairs: dict[str, str]) -> dict[str, Any]:
    try:
        device = pick_device(check_device(pairs.get("device"), "--judge_args device"))
        dtype = check_dtype(pairs.get("dtype"), "--judge_args dtype")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    batch, tokens = pairs.get("batch_size", "8"), pairs.get("max_new_tokens", str(MAX_NEW_TOKENS))
    return {"model": pairs.get("pretrained") or DEFAULT_MODEL, "batch_size": positive("batch_size", batch),
            "device": device, "dtype": dtype, "max_new_tokens": positive("max_new_tokens", tokens)}


def judge_options(judge: str, judge_args: str = "") -> dict[str, Any]:
    """The constructor options of ``judge`` from ``--judge_args``; unknown judges and keys fail with the choices."""
    if judge not in JUDGES:
        raise ConfigError(f"unknown judge {judge!r}; choose one of {', '.join(sorted(JUDGES))} (--judge)."
                          f"{did_you_mean(judge, JUDGES)}")
    pairs = parse_pairs(judge_args)
    check_keys(judge, pairs, MD_JUDGE_KEYS if judge == "md-judge" else ())
    return md_judge_options(pairs) if judge == "md-judge" else {}


# --- finding the logged samples ----------------------------------------------------------------------------------
@dataclass
class Job:
    """One results file and the samples files of its judged awareness tasks."""

    results: Path
    data: dict[str, Any] = field(repr=False)
    samples: dict[str, Path]  # task -> samples file
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)  # task -> its records


def result_files(run_dir: Path) -> list[Path]:
    """lm-eval results files under ``run_dir``, without unfinished cells and without this stage's own outputs."""
    if not run_dir.is_dir():
        raise JudgeStageError(f"run folder {run_dir} does not exist; pass an lm-eval --output_path folder or a "
                              "`fairpriv run` output folder")
    found = sorted(run_dir.rglob("results_*.json"))
    return [p for p in found if JUDGED not in p.name and not any(s.endswith(PARTIAL) for s in p.parts)]


def sample_files(results: Path) -> dict[str, Path]:
    """task -> ``samples_<task>_<time>.jsonl`` (or ``.jsonl.gz``) next to ``results_<time>.json``."""
    stamp, files = results.stem.removeprefix("results_"), {}
    for suffix in (f"_{stamp}.jsonl.gz", f"_{stamp}.jsonl"):  # plain wins when both exist
        for path in results.parent.glob(f"samples_*{suffix}"):
            files[path.name.removeprefix("samples_").removesuffix(suffix)] = path
    return files


def is_judged_task(config: dict[str, Any]) -> bool:
    """An awareness task whose generations the judge filter labels (its config names ``judge_responses``)."""
    return JUDGE_FILTER in json.dumps(config.get("filter_list") or [], default=str)


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JudgeStageError(f"{path} is not a readable lm-eval results file ({exc}); re-run it or move it away"
                              ) from None
    if not isinstance(data, dict) or not isinstance(data.get("configs"), dict):
        raise JudgeStageError(f"{path} has no 'configs': not an lm-eval results file; move it out of the folder")
    return data


def job_of(path: Path, notes: list[str]) -> Job | None:
    data, logged = load_results(path), sample_files(path)
    configs = data["configs"]
    judged = {t: logged[t] for t in configs if is_judged_task(configs[t]) and t in logged}
    notes += [f"{path}: skipped {t}: not a judged awareness task" for t in configs if t in logged and t not in judged]
    notes += [f"{path}: {t} has no logged samples; evaluate it with --log_samples to judge it again"
              for t in configs if is_judged_task(configs[t]) and t not in logged]
    return Job(path, data, judged) if judged else None


def plan(run_dir: Path) -> tuple[list[Job], list[str]]:
    """The results files with judged awareness samples, and notes on what is skipped; errors when there are none."""
    files, notes = result_files(run_dir), []
    if not any(sample_files(p) for p in files):
        raise JudgeStageError(f"no logged samples under {run_dir}: there is nothing to judge again. Evaluate with "
                              "--log_samples (and --output_path); `fairpriv run` logs them")
    jobs = [job for job in (job_of(p, notes) for p in files) if job is not None]
    if not jobs:
        raise JudgeStageError(f"no awareness task samples under {run_dir} (fairness_awareness, privacy_awareness): "
                              "nothing to judge again.\n" + "\n".join(notes))
    return jobs, notes


def read_samples(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        try:
            return [json.loads(line) for line in fh if line.strip()]
        except json.JSONDecodeError as exc:
            raise JudgeStageError(f"{path} is not a JSON-lines samples file ({exc}); re-run that evaluation"
                                  ) from None


def task_records(job: Job, task: str) -> list[dict[str, Any]]:
    """The task's records of its judge filter, checked to be complete (one per evaluated document)."""
    config = job.data["configs"][task]
    names = [f["name"] for f in config.get("filter_list") or [] if JUDGE_FILTER in json.dumps(f, default=str)]
    records = [r for r in read_samples(job.samples[task]) if r.get("filter") in names]
    expected = ((job.data.get("n-samples") or {}).get(task) or {}).get("effective")
    if not records or (expected is not None and len(records) != expected):
        raise JudgeStageError(f"{job.samples[task]} holds {len(records)} records of filter {names}, the results "
                              f"say {expected} documents: the samples are incomplete; evaluate {task} again")
    return records


# --- judging and recomputing -------------------------------------------------------------------------------------
def awareness_function(source: Any, what: str, task: str) -> Callable:
    """A function named in a results config (lm-eval stores ``!function`` values as their source text)."""
    match = re.match(r"\s*def (\w+)\(", str(source))
    if match is None or not callable(getattr(awareness, match[1], None)):
        raise JudgeStageError(f"{task}: its {what} is not one of fairpriv.metrics.awareness ({str(source)[:60]!r}); "
                              "this stage recomputes fairpriv's awareness tasks only")
    return getattr(awareness, match[1])


def aggregations(config: dict[str, Any], task: str) -> dict[str, Callable]:
    """metric -> aggregation, as the task declares them (lm-eval's built-in names resolved through its registry)."""
    from lm_eval.api.registry import get_aggregation

    out = {}
    for entry in config.get("metric_list") or []:
        agg = entry.get("aggregation")
        named = isinstance(agg, str) and not agg.lstrip().startswith("def ")
        out[entry["metric"]] = get_aggregation(agg) if named else awareness_function(agg, "aggregation", task)
    return out


def judge_texts(judge: Any, records: list[dict[str, Any]], bar) -> list[dict[str, Any]]:
    """Verdict records for the logged responses, in chunks (one progress step per chunk)."""
    size, verdicts = getattr(judge, "batch_size", RULE_CHUNK), []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        verdicts += verdict_records(judge, [r["doc"] for r in chunk], [first_text(r["resps"][0]) for r in chunk])
        bar.update(len(chunk))
    return verdicts


def rejudged_record(record: dict[str, Any], verdict: dict[str, Any], process: Callable) -> dict[str, Any]:
    """The record with the new verdict (logged as lm-eval logs filtered responses) and the new metric values."""
    from lm_eval.utils import sanitize_list

    metrics = process(record["doc"], [verdict])
    kept = {k: v for k, v in record.items() if k not in set(record.get("metrics") or [])}
    return {**kept, "filtered_resps": sanitize_list([verdict]), "metrics": list(metrics), **metrics}


def raw_metrics(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """metric -> the values of the records that emitted it, in first-seen order (lm-eval's ``raw_metrics``)."""
    raw: dict[str, list[Any]] = {}
    for record in records:
        for metric in record["metrics"]:
            raw.setdefault(metric, []).append(record[metric])
    return raw


def results_row(old: dict[str, Any], records: list[dict[str, Any]], aggs: dict[str, Callable], iters: Any
                ) -> dict[str, Any]:
    """lm-eval's aggregation of per-sample metrics (``_compute_task_aggregations``) for the records' filter; the
    old row's plain keys (name, alias) are kept, ``sample_len`` is recounted."""
    from lm_eval.api.metrics import mean, stderr_for_metric

    row, filter_key, raw = {k: v for k, v in old.items() if "," not in k}, records[0]["filter"], raw_metrics(records)
    row["sample_len"] = max(len(items) for items in raw.values())
    for metric, items in raw.items():
        agg = aggs.get(metric, mean)  # lm-eval's fallback for a metric without a declared aggregation
        stderr = stderr_for_metric(agg, iters) if isinstance(iters, int) and iters > 0 else None
        row[f"{metric},{filter_key}"] = agg(items)
        row[f"{metric}_stderr,{filter_key}"] = stderr(items) if stderr and len(items) > 1 else "N/A"
    return row


# --- outputs -----------------------------------------------------------------------------------------------------
def judged_name(path: Path, judge: str) -> str:
    """``results_T.json`` -> ``results_T.judged-J.json``; ``samples_X_T.jsonl[.gz]`` -> ``samples_X_T.judged-J.jsonl``
    (always plain JSON lines)."""
    stem = path.name.removesuffix(".gz").removesuffix(".jsonl").removesuffix(".json")
    return f"{stem}{JUDGED}{judge}{'.json' if path.suffix == '.json' else '.jsonl'}"


def task_metadata(old: dict[str, Any], judge: str, options: dict[str, Any]) -> dict[str, Any]:
    """The task config's metadata with the new judge in the keys ``--metadata`` uses for in-task judging."""
    keys = ("judge_model", "judge_batch_size", "judge_device", "judge_dtype", "judge_backend")
    meta = {k: v for k, v in (old or {}).items() if k not in keys}
    extra = {"judge_model": options.get("model"), "judge_batch_size": options.get("batch_size"),
             "judge_device": options.get("device"), "judge_dtype": options.get("dtype"),
             "judge_backend": options.get("backend")}
    return {**meta, "judge": judge, **{k: v for k, v in extra.items() if v is not None}}


def judged_results(job: Job, rows: dict[str, dict], judging: dict[str, Any]) -> dict[str, Any]:
    """The old results restricted to the re-judged tasks, with the new rows, metadata and provenance."""
    data, tasks = job.data, list(rows)
    new = {**data, "results": rows}
    new["configs"] = {t: {**data["configs"][t], "metadata": task_metadata(data["configs"][t].get("metadata"),
                                                                         judging["judge"], judging["options"])}
                      for t in tasks}
    for key in ("versions", "n-shot", "higher_is_better", "n-samples", "task_hashes", "group_subtasks"):
        if isinstance(data.get(key), dict):
            new[key] = {t: v for t, v in data[key].items() if t in tasks}
    new.pop("groups", None)
    return {**new, "fairpriv_judging": judging}


def dumps_samples(records: list[dict[str, Any]]) -> str:
    from lm_eval.utils import handle_non_serializable

    return "".join(json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n" for r in records)


def dumps_results(data: dict[str, Any]) -> str:
    from lm_eval.utils import handle_non_serializable

    return json.dumps(data, indent=2, default=handle_non_serializable, ensure_ascii=False)



# --- the stage ---------------------------------------------------------------------------------------------------
@dataclass
class TaskOutcome:
    results: Path  # the new results file
    task: str
    old: dict[str, Any] = field(repr=False)
    new: dict[str, Any] = field(repr=False)


@dataclass
class JudgeOutcome:
    judge: str
    tasks: list[TaskOutcome]
    written: list[Path]
    notes: list[str]


def judge_job(job: Job, judge: Any, judging: dict[str, Any], bar) -> tuple[dict[Path, str], list[TaskOutcome]]:
    """The files of one results file's re-judged tasks (path -> text, samples first), nothing written yet."""
    files, rows, outcomes = {}, {}, []
    target = job.results.with_name(judged_name(job.results, judging["judge"]))
    for task, records in job.records.items():
        config = job.data["configs"][task]
        process = awareness_function(config.get("process_results"), "process_results", task)
        new = [rejudged_record(r, v, process) for r, v in zip(records, judge_texts(judge, records, bar), strict=True)]
        old_row = (job.data.get("results") or {}).get(task, {})
        rows[task] = results_row(old_row, new, aggregations(config, task), (job.data.get("config") or {}).get(
            "bootstrap_iters"))
        sample_path = job.samples[task].with_name(judged_name(job.samples[task], judging["judge"]))
        files[sample_path] = dumps_samples(new)
        outcomes.append(TaskOutcome(target, task, old_row, rows[task]))
    record = {**judging, "samples": {t: judged_name(p, judging["judge"]) for t, p in job.samples.items()},
              "source": job.results.name, "source_sha256": sha256_file(job.results)}
    files[target] = dumps_results(judged_results(job, rows, record))
    return files, outcomes


def read_all(jobs: list[Job]) -> int:
    """Read and check every samples file (before the judge loads); the number of records to judge."""
    for job in jobs:
        job.records = {task: task_records(job, task) for task in job.samples}
    return sum(len(records) for job in jobs for records in job.records.values())


def load_judge(judge: str, options: dict[str, Any]):
    """The judge, loaded; a model that cannot be loaded is named with the fix."""
    try:
        if options.get("backend") == "vllm":
            from fairpriv.models.vllm_judge import VLLMJudge  # imports torch and vLLM: only for backend=vllm

            return VLLMJudge(**{k: v for k, v in options.items() if k != "backend"})
        return get_judge(judge, **options)
    except OSError as exc:
        raise JudgeStageError(f"cannot load the {judge} model {options.get('model')!r} ({exc}); pass "
                              "--judge_args pretrained=<a local model folder or a Hub id you can reach>") from None


def judge_all(jobs: list[Job], judge: Any, judging: dict[str, Any], total: int) -> tuple[list[TaskOutcome], list[Path]]:
    from tqdm import tqdm

    outcomes, written = [], []
    with tqdm(total=total, desc=f"judging ({judging['judge']})", unit="sample") as bar:
        for job in jobs:
            files, done = judge_job(job, judge, judging, bar)
            for path, text in files.items():  # samples first, the results file last
                write_atomic(path, text)
            outcomes, written = outcomes + done, written + list(files)
    return outcomes, written


def run(run_dir: Path, judge: str, judge_args: str = "", echo: Callable[[str], None] = print) -> JudgeOutcome:
    """Judge every logged awareness generation under ``run_dir`` again with ``judge``; write the judged files.
    Arguments, folder and samples are checked and the judge is loaded before anything is written; a model judge
    is freed at the end."""
    options = judge_options(judge, judge_args)
    jobs, notes = plan(Path(run_dir))
    total = read_all(jobs)
    judging = {"judge": judge, "options": options, "judged_at": datetime.now(timezone.utc).isoformat()}
    model = load_judge(judge, options)
    try:
        outcomes, written = judge_all(jobs, model, judging, total)
    finally:
        if hasattr(model, "close"):
            model.close()
    for line in notes + [summary(o) for o in outcomes]:
        echo(line)
    return JudgeOutcome(judge, outcomes, written, notes)


def summary(outcome: TaskOutcome) -> str:
    """``<file> <task>: awareness 0.694 -> 0.712, did-not-follow 0.277 -> 0.020, judged n 347 -> 470``."""
    def pick(row: dict[str, Any], metric: str) -> Any:
        return next((v for k, v in row.items() if k.split(",")[0] == metric), None)

    def show(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, float) and not math.isnan(x) else str(x)

    parts = [f"{label} {show(pick(outcome.old, m))} -> {show(pick(outcome.new, m))}"
             for m, label in (("awareness", "awareness"), ("awareness_dnf", "did-not-follow"),
                              ("awareness_n", "judged n"))]
    return f"{outcome.results} {outcome.task}: " + ", ".join(parts)
