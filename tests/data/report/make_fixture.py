"""Writes the report's checked-in sample results (run once; the files beside this script are its output).

Hand-designed so the expected numbers are computable by hand (see tests/unit/test_report_build.py):
* base: fairness_awareness_mc 10/20 safe, privacy_awareness_mc 14/20 safe, perplexity exp(5) on 10 documents;
* dean (p=q=0.001): fairness 17/20 (8 unsafe->safe, 1 safe->unsafe), privacy 15/20 (2 up, 1 down), perplexity
  exp(5.5) (every document's log-likelihood 10 lower);
* dp (epsilon=8): fairness only, with DP facts;
* a --limit 5 run of the base (left out of reports unless asked);
* v2/: a fairness_awareness_mc run with task version 2 (for the version-mixing refusal).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"


def doc_hash(task: str, i: int) -> str:
    return hashlib.sha256(f"{task}-{i}".encode()).hexdigest()


def awareness_records(task: str, labels: list[int]) -> list[dict]:
    return [{"doc_id": i, "doc_hash": doc_hash(task, i), "filter": "none", "metrics": ["awareness"],
             "awareness": label} for i, label in enumerate(labels)]


def perplexity_records(logliks: list[float]) -> list[dict]:
    return [{"doc_id": i, "doc_hash": doc_hash("ppl", i), "filter": "none",
             "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
             "word_perplexity": [ll, 20], "byte_perplexity": [ll, 100], "bits_per_byte": [ll, 100]}
            for i, ll in enumerate(logliks)]


def rate(labels: list[int]) -> float:
    judged = [x for x in labels if x in (0, 1)]
    return sum(x == 0 for x in judged) / len(judged)


def awareness_result(labels: list[int], low: float, high: float) -> dict:
    return {"awareness,none": rate(labels), "awareness_stderr,none": "N/A", "awareness_ci_low,none": low,
            "awareness_ci_high,none": high, "awareness_n,none": len(labels)}


def write_run(folder: Path, stamp: str, model: str, model_args: dict, tasks: dict, fairpriv: dict | None = None,
              limit: float | None = None, versions: dict | None = None, date: float = 1.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": model, "model_args": model_args, "limit": limit, "batch_size": 16}
    if fairpriv:
        config["fairpriv"] = fairpriv
    results = {name: t["result"] for name, t in tasks.items()}
    data = {"results": results, "versions": versions or {name: 1 for name in tasks}, "config": config,
            "n-samples": {name: {"original": len(t["samples"]), "effective": len(t["samples"])}
                          for name, t in tasks.items()},
            "configs": {name: {"task": name} for name in tasks}, "date": date}
    (folder / f"results_{stamp}.json").write_text(json.dumps(data, indent=1))
    for name, t in tasks.items():
        lines = "".join(json.dumps(r) + "\n" for r in t["samples"])
        (folder / f"samples_{name}_{stamp}.jsonl").write_text(lines)


def ppl_result(ll: float) -> dict:
    import math

    return {"word_perplexity,none": math.exp(-ll / 20), "word_perplexity_stderr,none": "N/A"}


def main() -> None:
    base_f, base_p = [0] * 10 + [1] * 10, [0] * 14 + [1] * 6
    dean_f = [1] + [0] * 9 + [0] * 8 + [1] * 2
    dean_p = [1] + [0] * 13 + [0, 0] + [1] * 4
    base_tasks = {"fairness_awareness_mc": {"result": awareness_result(base_f, 0.3, 0.7),
                                            "samples": awareness_records("fairness_awareness_mc", base_f)},
                  "privacy_awareness_mc": {"result": awareness_result(base_p, 0.5, 0.9),
                                           "samples": awareness_records("privacy_awareness_mc", base_p)},
                  "bold_wiki_perplexity": {"result": ppl_result(-100.0), "samples": perplexity_records([-100.0] * 10)}}
    write_run(HERE / "runs" / "base", "2026-01-01T00-00-00", "hf", {"pretrained": MODEL}, base_tasks)
    dean_tasks = {"fairness_awareness_mc": {"result": awareness_result(dean_f, 0.65, 1.0),
                                            "samples": awareness_records("fairness_awareness_mc", dean_f)},
                  "privacy_awareness_mc": {"result": awareness_result(dean_p, 0.55, 0.95),
                                           "samples": awareness_records("privacy_awareness_mc", dean_p)},
                  "bold_wiki_perplexity": {"result": ppl_result(-110.0), "samples": perplexity_records([-110.0] * 10)}}
    dean_facts = {"intervention": "dean", "facts": {"total": {"zeroed": 13154},
                                                    "scoring": {"data": {"fairness": {"source": "builtin"},
                                                                         "privacy": {"source": "builtin"}}}}}
    write_run(HERE / "runs" / "dean", "2026-01-01T00-00-01", "dean-hf", {"pretrained": MODEL, "p": 0.001, "q": 0.001},
              dean_tasks, dean_facts)
    dp_facts = {"intervention": "dp", "facts": {"private": True, "epsilon": 7.995, "delta": 0.00224,
                                                "accountant": "rdp", "data": {"source": "builtin", "kind": "privacy",
                                                                              "n": 256}}}
    write_run(HERE / "runs" / "dp", "2026-01-01T00-00-02", "dp-hf", {"pretrained": MODEL, "epsilon": 8},
              {"fairness_awareness_mc": base_tasks["fairness_awareness_mc"]}, dp_facts)
    limited = {"fairness_awareness_mc": {"result": awareness_result(base_f[:5], 1.0, 1.0),
                                         "samples": awareness_records("fairness_awareness_mc", base_f[:5])}}
    write_run(HERE / "runs" / "base-limit5", "2026-01-01T00-00-03", "hf", {"pretrained": MODEL}, limited, limit=5)
    write_run(HERE / "v2", "2026-01-01T00-00-04", "hf", {"pretrained": "other-model"},
              {"fairness_awareness_mc": base_tasks["fairness_awareness_mc"]}, versions={"fairness_awareness_mc": 2})


if __name__ == "__main__":
    main()
