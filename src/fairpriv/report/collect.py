"""Reading lm-eval result files for the report: every ``results_*.json`` under a folder, with its samples files.

A :class:`Run` is one results file: which base model and which variant (intervention + config) it evaluated, its
``--limit``, task versions, per-task metrics, the intervention's facts and summary (``config.fairpriv``) and where
the ``--log_samples`` records of each task are. The files come from ``fairpriv run``, ``fairpriv eval`` or the plain
``lm_eval`` CLI alike; ``fairpriv run`` adds a ``fairpriv_experiment`` entry that names the variant and its sweep.
``fairpriv judge`` writes ``results_<time>.judged-<judge>.json`` next to a results file: the same evaluation with
its awareness tasks judged again (a ``fairpriv_judging`` entry names the judge and the file it came from).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fairpriv.interventions.registry import described
from fairpriv.scorers.md_judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL

# Model arguments that change how a model runs, not which model it is: HFLM's and lm-eval's vLLM model's.
RUNTIME_KEYS = frozenset({"pretrained", "dtype", "device", "batch_size", "max_batch_size", "max_length",
                          "trust_remote_code", "parallelize", "device_map", "refit", "attn_implementation",
                          "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_model_len",
                          "enforce_eager", "swap_space", "max_num_seqs", "seed", "quantization", "lora_local_path",
                          "enable_prefix_caching"})
EXPORT_RECORD = "fairpriv_export.json"  # what `fairpriv export` writes beside an exported model's files


class ReportError(ValueError):
    """Result files the report cannot use; the message names the file and the fix."""


@dataclass
class Run:
    path: Path
    data: dict[str, Any] = field(repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return self.data.get("config") or {}

    @property
    def model_args(self) -> dict[str, Any]:
        args = self.config.get("model_args") or {}
        return args if isinstance(args, dict) else parse_arg_string(str(args))

    @property
    def base_model(self) -> str:
        ref = self.exported.get("base_model_ref") or {}
        return str(ref.get("pretrained") or self.model_args.get("pretrained") or self.config.get("model") or "?")

    @property
    def fairpriv(self) -> dict[str, Any]:
        return self.config.get("fairpriv") or export_block(self.exported)

    @cached_property
    def exported(self) -> dict[str, Any]:
        """The ``fairpriv_export.json`` of the model this run evaluated when it is a ``fairpriv export`` folder given
        to a plain model (``--model hf|vllm pretrained=DIR``, or vLLM's ``lora_local_path=DIR``), read where the
        folder is now (relative paths from the current folder); {} otherwise, and for a run with its own block."""
        if self.config.get("fairpriv"):
            return {}
        for key in ("lora_local_path", "pretrained"):
            record = read_export_record(self.model_args.get(key))
            if record:
                return record
        return {}

    @property
    def intervention(self) -> str | None:
        return self.fairpriv.get("intervention")

    @property
    def variant_config(self) -> dict[str, Any]:
        """The keys that name the variant: model args minus runtime keys (an explicit artifact by its hash)."""
        if self.exported:  # named by its artifact, as `<name>-hf artifact=FOLDER` is
            return {"artifact": str(self.exported.get("artifact_hash"))[:12]}
        engine = set(self.fairpriv.get("engine_args") or ())  # what a <name>-vllm run says were engine keys
        config = {k: v for k, v in self.model_args.items() if k not in RUNTIME_KEYS and k not in engine}
        for alias in ("artifact", self.artifact_alias):
            if alias in config:
                config[alias] = str(self.fairpriv.get("artifact_hash", config[alias]))[:12]
        return config

    @property
    def artifact_alias(self) -> str | None:
        """The intervention's other name for ``artifact=`` (DEAN's ``mask=``): as recorded, else the installed one's."""
        if "artifact_alias" in self.fairpriv:
            return self.fairpriv["artifact_alias"]
        return getattr(self.described, "artifact_alias", None)

    @property
    def summary(self) -> dict[str, str]:
        """The intervention's text columns (e.g. ``epsilon``, ``data``): as recorded, else (results written before
        blocks carried a summary) computed from the facts by the installed intervention; {} when there is none."""
        recorded = self.fairpriv.get("summary")
        given = recorded if isinstance(recorded, dict) else self.described.summary(self.facts) if self.described else {}
        return {str(k): str(v) for k, v in given.items() if v is not None and v != ""}

    @cached_property
    def described(self) -> type | None:
        """What has the intervention's ``summary`` and ``artifact_alias`` (see the intervention registry)."""
        return described(self.intervention) if self.intervention else None

    @property
    def experiment(self) -> dict[str, Any]:
        return self.data.get("fairpriv_experiment") or {}

    @property
    def limit(self) -> float | None:
        return self.config.get("limit")

    @property
    def date(self) -> float:
        return float(self.data.get("date") or 0.0)

    @property
    def facts(self) -> dict[str, Any]:
        return self.fairpriv.get("facts") or {}

    @property
    def judging(self) -> dict[str, Any]:
        """``fairpriv judge``'s record (judge, options, source file, time); {} for an evaluation's own results."""
        return self.data.get("fairpriv_judging") or {}

    @property
    def origin(self) -> Path:
        """The results file of the evaluation behind this run (itself, unless it is a later judging of one)."""
        source = self.judging.get("source")
        return self.path.parent / source if source else self.path

    @property
    def order(self) -> tuple[float, str]:
        """The key that decides which run shows a task (the larger wins): the newer evaluation, and of one evaluation
        the latest ``fairpriv judge`` output over earlier ones and over the evaluation's own file."""
        return self.date, str(self.judging.get("judged_at") or "")

    def judge(self, task: str) -> str | None:
        """The judge behind ``task``'s numbers (``md-judge (model)`` for a model other than the default), None for a
        task without a judge filter."""
        config = (self.data.get("configs") or {}).get(task) or {}
        if "judge_responses" not in json.dumps(config.get("filter_list") or [], default=str):
            return None
        meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        name, model = str(meta.get("judge") or "rule"), str(meta.get("judge_model") or "")
        shown = model.rstrip("/").rsplit("/", 1)[-1]
        return name if name == "rule" or model in ("", DEFAULT_JUDGE_MODEL) else f"{name} ({shown})"

    def metric(self, task: str, metric: str) -> float | str | None:
        """``metric`` under the ``none`` filter, else under the task's one filter (e.g. ``judged``)."""
        row = (self.data.get("results") or {}).get(task, {})
        keys = [k for k in row if k.startswith(metric + ",")]
        key = f"{metric},none" if f"{metric},none" in row else (keys[0] if len(keys) == 1 else None)
        return None if key is None else row[key]

    def version(self, task: str) -> str:
        return str((self.data.get("versions") or {}).get(task, "?"))

    def tasks(self) -> list[str]:
        return list((self.data.get("results") or {}))

    @cached_property
    def sample_files(self) -> dict[str, Path]:
        """task -> its ``samples_<task>_<date>.jsonl`` (lm-eval names both files after one timestamp), or the same
        file gzipped (``.jsonl.gz``, as the published results keep them)."""
        stamp = self.path.stem.removeprefix("results_")
        files = {}
        for suffix in (f"_{stamp}.jsonl.gz", f"_{stamp}.jsonl"):  # plain wins when both exist
            for path in self.path.parent.glob(f"samples_*{suffix}"):
                files[path.name.removeprefix("samples_").removesuffix(suffix)] = path
        return files

    def samples(self, task: str) -> list[dict[str, Any]] | None:
        path = self.sample_files.get(task)
        return None if path is None else read_samples(path)


def read_export_record(folder: Any) -> dict[str, Any]:
    """The export record in ``folder``, {} when there is none or it is not one (a report never fails on it)."""
    if not folder:
        return {}
    try:
        record = json.loads((Path(str(folder)) / EXPORT_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(record, dict) and record.get("fairpriv_export") == 1 and record.get("intervention")
    return record if ok else {}


def export_block(record: dict[str, Any]) -> dict[str, Any]:
    """An export record as the ``fairpriv`` block that ``<name>-hf`` writes into its results."""
    if not record:
        return {}
    keys = ("intervention", "intervention_version", "config", "artifact_hash", "artifact_path", "facts",
            "base_model")
    return {**{k: record.get(k) for k in keys}, "artifact_source": "export", "dtype": record.get("dtype")}


def parse_arg_string(text: str) -> dict[str, str]:
    """``a=1,b=x`` -> {"a": "1", "b": "x"} (lm-eval stores the CLI's --model_args string as given)."""
    pairs = [part.split("=", 1) for part in text.split(",") if "=" in part]
    return {k.strip(): v.strip() for k, v in pairs}


def read_samples(path: Path) -> list[dict[str, Any]]:
    records = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                records.append(_json_line(line, path, number))
    return records


def _json_line(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{number} is not JSON ({exc}); re-run that evaluation or delete the file") from exc


def find_runs(root: Path) -> list[Run]:
    """Every lm-eval results file under ``root`` (sorted by path), skipping unfinished ``.partial`` cells."""
    if not root.is_dir():
        raise ReportError(f"results folder {root} does not exist; `fairpriv run` or `lm_eval --output_path` makes one")
    paths = sorted(p for p in root.rglob("results_*.json") if not any(s.endswith(".partial") for s in p.parts))
    runs = [load_run(p) for p in paths]
    if not runs:
        raise ReportError(f"no lm-eval results_*.json under {root}; point the report at an --output_path folder")
    return runs


def load_run(path: Path) -> Run:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not a readable results file ({exc}); re-run it or delete it") from exc
    if not isinstance(data, dict) or "results" not in data or "config" not in data:
        raise ReportError(f"{path} has no 'results'/'config': not an lm-eval results file; move it out of the folder")
    return Run(path, data)
