"""Writes the race and religion sample results beside this script (run once; the runs/ folder is its output).

Hand-designed so the expected numbers are computable by hand (see tests/unit/test_report_social_bias.py). Every
BOLD document logs ``[group, score_1, ..., score_k]`` under every metric of its kind (toxicity or sentiment), every
divergence document one float per metric, as the race and religion tasks do. Groups have unequal sizes:

* race_bias_bold (k = 1): African_Americans 3 prompts, Asian_Americans 2, European_Americans 2,
  Hispanic_and_Latino_Americans 1. Base toxicity means .3/.1/.2/.6 (max-min .5, pair gap EA - AA = -.1).
* religion_bias_bold (k = 2, flat ``[group, s1, s2]``): christianity 3 prompts, islam 2, judaism 1. Base toxicity
  means .8/3, .35, .1 (max-min .25). The base config names no pair (the default christianity/islam applies).
* race_bias_divergence: 5 templates, religion_bias_divergence: 4.

Runs: ``base``; ``dp`` (epsilon=8): every document, higher toxicity for African_Americans, Hispanic_and_Latino_
Americans and islam, every race divergence up; ``cda``: the Hispanic_and_Latino_Americans and islam prompts missing
(their documents absent from the samples, the religion pair gap NaN), judaism's toxicity up.
Numbers in results JSON follow the tasks' definitions; the interval bounds are value -/+ 0.1 (made up). The
samples hold the headline metrics only (lm-eval also logs each document's value under every ``*_ci_low/_ci_high``).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"
AA, AS, EA, HL = "African_Americans", "Asian_Americans", "European_Americans", "Hispanic_and_Latino_Americans"
CHR, ISL, JUD = "christianity", "islam", "judaism"
RACE_PAIR, RELIGION_PAIR = (EA, AA), (CHR, ISL)

# (group, toxicity scores, sentiment scores) per prompt, in document order.
RACE_BASE = [(AA, [0.2], [0.5]), (AA, [0.4], [0.1]), (AA, [0.3], [0.3]), (EA, [0.1], [0.4]), (EA, [0.3], [0.6]),
             (HL, [0.6], [-0.2]), (AS, [0.05], [0.2]), (AS, [0.15], [0.4])]
RACE_DP = [(AA, [0.3], [0.5]), (AA, [0.5], [0.1]), (AA, [0.4], [0.3]), (EA, [0.1], [0.4]), (EA, [0.3], [0.6]),
           (HL, [0.9], [-0.4]), (AS, [0.05], [0.2]), (AS, [0.15], [0.4])]
RACE_CDA = [r for r in RACE_BASE if r[0] != HL]
RELIGION_BASE = [(CHR, [0.1, 0.3], [0.5, 0.5]), (CHR, [0.2, 0.2], [0.1, 0.3]), (CHR, [0.5, 0.3], [0.2, 0.2]),
                 (ISL, [0.6, 0.4], [-0.2, 0.0]), (ISL, [0.3, 0.1], [0.1, 0.1]), (JUD, [0.0, 0.2], [0.4, 0.6])]
RELIGION_DP = [*RELIGION_BASE[:3], (ISL, [0.8, 0.6], [-0.2, 0.0]), (ISL, [0.5, 0.3], [0.1, 0.1]), RELIGION_BASE[5]]
RELIGION_CDA = [*RELIGION_BASE[:3], (JUD, [0.4, 0.6], [0.4, 0.6])]
# Hellinger per template; KL, JS and TVD are fixed multiples of it.
RACE_DIV = {"base": [0.10, 0.20, 0.15, 0.30, 0.25], "dp": [0.11, 0.22, 0.18, 0.34, 0.30],
            "cda": [0.08, 0.20, 0.16, 0.30, 0.21]}
RELIGION_DIV = {"base": [0.2, 0.1, 0.3, 0.4], "dp": [0.3, 0.3, 0.25, 0.7], "cda": [0.2, 0.1, 0.3, 0.4]}
DIV_SCALE = {"kl_bias": 2.0, "js_bias": 0.25, "hellinger_bias": 1.0, "tvd_bias": 0.8}


def doc_hash(task: str, key: str) -> str:
    return hashlib.sha256(f"{task}-{key}".encode()).hexdigest()


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def group_means(rows: list[tuple[str, list[float]]]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for group, scores in rows:
        groups.setdefault(group, []).append(mean(scores))
    return {g: mean(v) for g, v in sorted(groups.items())}


def bold_metrics(rows: list[tuple[str, list[float]]], score: str, pair: tuple[str, str],
                 all_groups: list[str]) -> dict[str, float]:
    means = group_means(rows)
    values = list(means.values())
    centre = mean(values)
    out = {f"{score}_maxmin_gap": max(values) - min(values),
           f"{score}_dispersion": math.sqrt(mean([(m - centre) ** 2 for m in values])),
           f"{score}_pair_gap": (means[pair[0]] - means[pair[1]]) if pair[0] in means and pair[1] in means
           else float("nan")}
    for g in all_groups:
        others = [m for h, m in means.items() if h != g]
        out[f"{score}_mean_{g}"] = means.get(g, float("nan"))
        out[f"{score}_gap_{g}"] = means[g] - mean(others) if g in means else float("nan")
    return out


def with_bounds(metrics: dict[str, float], filter: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in metrics.items():
        out[f"{name},{filter}"] = value
        out[f"{name}_stderr,{filter}"] = "N/A"
        out[f"{name}_ci_low,{filter}"] = value - 0.1
        out[f"{name}_ci_high,{filter}"] = value + 0.1
    return out


def bold_task(task: str, rows: list, pair: tuple[str, str], all_groups: list[str]) -> tuple[dict, list[dict]]:
    toxicity = [(g, t) for g, t, _ in rows]
    sentiment = [(g, s) for g, _, s in rows]
    metrics = {**bold_metrics(toxicity, "toxicity", pair, all_groups),
               **bold_metrics(sentiment, "sentiment", pair, all_groups)}
    names = list(metrics)  # lm-eval also logs the same value under each *_ci_low/_ci_high: left out here
    samples, seen = [], {}
    for i, (group, tox, sent) in enumerate(rows):
        key = f"{group}-{seen.setdefault(group, 0)}"  # the prompt's place within its group: the same across runs
        seen[group] += 1
        record = {"doc_id": i, "doc": {"id": key, "group": group}, "doc_hash": doc_hash(task, key),
                  "filter": "scored", "metrics": names}
        for name in names:
            record[name] = [group, *(tox if name.startswith("toxicity") else sent)]
        samples.append(record)
    return {"alias": task, **with_bounds(metrics, "scored")}, samples


def divergence_task(task: str, hellinger: list[float]) -> tuple[dict, list[dict]]:
    metrics = {m: mean([h * scale for h in hellinger]) for m, scale in DIV_SCALE.items()}
    samples = [{"doc_id": i, "doc": {"id": f"template-{i}"}, "doc_hash": doc_hash(task, f"template-{i}"),
                "filter": "none", "metrics": list(DIV_SCALE), **{m: h * DIV_SCALE[m] for m in DIV_SCALE}}
               for i, h in enumerate(hellinger)]
    return {"alias": task, **with_bounds(metrics, "none")}, samples


def write_run(folder: Path, stamp: str, model: str, model_args: dict, tasks: dict, metadata: dict,
              fairpriv: dict | None = None, date: float = 1.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": model, "model_args": model_args, "limit": None, "batch_size": 16}
    if fairpriv:
        config["fairpriv"] = fairpriv
    data = {"results": {name: result for name, (result, _) in tasks.items()},
            "versions": {name: 1 for name in tasks},
            "config": config,
            "n-samples": {name: {"original": len(s), "effective": len(s)} for name, (_, s) in tasks.items()},
            "configs": {name: {"task": name, "metadata": {"version": 1, **metadata.get(name, {})}} for name in tasks},
            "date": date}
    (folder / f"results_{stamp}.json").write_text(json.dumps(data, indent=1))
    for name, (_, samples) in tasks.items():
        (folder / f"samples_{name}_{stamp}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))


def tasks_of(race: list, religion: list, variant: str) -> dict:
    race_groups, religion_groups = [AA, AS, EA, HL], [CHR, ISL, JUD]
    return {"race_bias_bold": bold_task("race_bias_bold", race, RACE_PAIR, race_groups),
            "religion_bias_bold": bold_task("religion_bias_bold", religion, RELIGION_PAIR, religion_groups),
            "race_bias_divergence": divergence_task("race_bias_divergence", RACE_DIV[variant]),
            "religion_bias_divergence": divergence_task("religion_bias_divergence", RELIGION_DIV[variant])}


def main() -> None:
    runs = HERE / "runs"
    race_meta = {"race_bias_bold": {"pair": list(RACE_PAIR)}}
    write_run(runs / "base", "2026-01-02T00-00-00", "hf", {"pretrained": MODEL}, tasks_of(RACE_BASE, RELIGION_BASE,
              "base"), race_meta)
    dp_facts = {"intervention": "dp", "facts": {"private": True, "epsilon": 7.995, "delta": 0.001, "accountant": "rdp",
                                                "data": {"source": "bold-wiki", "kind": "text", "n": 512}}}
    write_run(runs / "dp", "2026-01-02T00-00-01", "dp-hf", {"pretrained": MODEL, "epsilon": 8},
              tasks_of(RACE_DP, RELIGION_DP, "dp"), {**race_meta, "religion_bias_bold": {"pair": list(RELIGION_PAIR)}},
              dp_facts, date=2.0)
    cda_facts = {"intervention": "cda", "facts": {"data": {"source": "bold-wiki", "kind": "text", "n": 512}}}
    write_run(runs / "cda", "2026-01-02T00-00-02", "cda-hf", {"pretrained": MODEL, "data": "bold-wiki"},
              tasks_of(RACE_CDA, RELIGION_CDA, "cda"), race_meta, cda_facts, date=3.0)


if __name__ == "__main__":
    main()
