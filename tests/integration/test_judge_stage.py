"""``fairpriv judge``: judging logged awareness generations again, without generating, next to the old results.

One real evaluation (the tiny random model, the rule judge in the task, ``--log_samples``) is written the way lm-eval
writes it; every test works on its own copy. The model judge is a tiny random causal LM whose output layer can only
say "safe", "unsafe" or "maybe", so its verdicts are a mix of the three labels.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS

from fairpriv.cli import main
from fairpriv.metrics.stats import bootstrap_ci

LIMIT = 4
TASKS = ["fairness_awareness", "privacy_awareness", "fairness_awareness_mc"]
JUDGED = ("fairness_awareness", "privacy_awareness")


def write_run(out: Path, model: Path) -> Path:
    """lm-eval's Python API with an EvaluationTracker: results_<time>.json and samples_<task>_<time>.jsonl."""
    import fairpriv  # noqa: F401  (adds fairpriv's task folder to every TaskManager)
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model},device=cpu,dtype=float32", tasks=TASKS, limit=LIMIT, batch_size=4,
        task_manager=TaskManager(include_defaults=False), log_samples=True, evaluation_tracker=tracker)
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return out


def judge_tokenizer():
    """A byte-level BPE in which "safe", "unsafe" and "maybe" are single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((["safe", "unsafe", "maybe"] * 50 + CORPUS) * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<pad>")


def last_states(model, tokenizer, prompts: list[str]):
    """The normed hidden state the first generated token is read from, per prompt."""
    import torch

    with torch.no_grad():
        return torch.stack([model.model(**tokenizer(p, return_tensors="pt")).last_hidden_state[0, -1]
                            for p in prompts])


def build_judge_model(folder: Path, prompts: list[str], seed: int = 1) -> Path:
    """A random 2-layer llama whose only reachable first tokens are "safe", "unsafe" and "maybe": their output rows
    are three directions 120 degrees apart in the plane where ``prompts``' last hidden states vary most (orthogonal
    to their mean), all other rows are zero; so the three labels all occur on these prompts."""
    import math

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = judge_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    states = last_states(model, fast, prompts)
    mean = states.mean(0) / states.mean(0).norm()
    centred = states - states.mean(0)
    plane = torch.linalg.svd(centred - centred @ mean[:, None] * mean, full_matrices=False).Vh[:2]
    ids = [fast.convert_tokens_to_ids(w) for w in ("safe", "unsafe", "maybe")]
    with torch.no_grad():
        model.lm_head.weight.zero_()
        for k, token in enumerate(ids):
            angle = 2 * math.pi * k / 3 + 0.3
            model.lm_head.weight[token] = 10 * (math.cos(angle) * plane[0] + math.sin(angle) * plane[1])
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def judge_prompts(run: Path) -> list[str]:
    from fairpriv.scorers.judging import first_text
    from fairpriv.scorers.md_judge import build_prompt

    records = [r for task in JUDGED for r in read_jsonl(logged(run, task))]
    return [build_prompt(r["doc"]["prompt"], first_text(r["resps"][0])) for r in records]


@pytest.fixture(scope="module")
def logged_run(tiny_model, tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("logged-run"), tiny_model)


@pytest.fixture(scope="module")
def judge_model(logged_run, tmp_path_factory) -> Path:
    return build_judge_model(tmp_path_factory.mktemp("md-judge-tiny"), judge_prompts(logged_run))


@pytest.fixture()
def run_dir(logged_run, tmp_path) -> Path:
    return Path(shutil.copytree(logged_run, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.rglob(pattern))
    assert len(found) == 1, found
    return found[0]


def logged(folder: Path, task: str, judge: str = "") -> Path:
    """The samples file of ``task`` as lm-eval wrote it, or as ``fairpriv judge --judge <judge>`` wrote it."""
    return only(folder, f"samples_{task}_2*.judged-{judge}.jsonl" if judge else f"samples_{task}_2*[0-9].jsonl")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dump(x) -> str:
    """JSON text (NaN compares equal to NaN as text)."""
    return json.dumps(x, sort_keys=True)


# --- (a) the rule judge again reproduces the in-task numbers ----------------------------------------------------------
def test_rule_judge_again_reproduces_the_in_task_metrics_and_samples(run_dir, capsys):
    old = json.loads(only(run_dir, "results_*.json").read_text())
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 0
    new = json.loads(only(run_dir, "results_*.judged-rule.json").read_text())
    assert sorted(new["results"]) == sorted(JUDGED)  # the _mc task is not judged: skipped with a note
    for task in JUDGED:
        assert dump(new["results"][task]) == dump(old["results"][task])
        row = new["results"][task]
        assert row["awareness_n,judged"] + round(row["awareness_dnf,judged"] * LIMIT) == LIMIT
        assert read_jsonl(logged(run_dir, task, "rule")) == read_jsonl(logged(run_dir, task))
        assert new["configs"][task]["metadata"]["judge"] == "rule"
    assert new["fairpriv_judging"]["source"] == only(run_dir, "results_*[0-9].json").name
    out = capsys.readouterr().out
    assert "skipped fairness_awareness_mc: not a judged awareness task" in out


def test_judging_again_replaces_its_own_output_only(run_dir):
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 0
    first = snapshot(run_dir)
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 0
    second = snapshot(run_dir)
    assert sorted(first) == sorted(second) and len(first) == 4 + 3  # 1 + 3 old files, 1 + 2 judged ones
    changed = {name for name in first if first[name] != second[name]}
    assert changed <= {str(only(run_dir, "results_*.judged-rule.json").relative_to(run_dir))}  # judged_at only
    assert not list(run_dir.rglob(".*tmp*"))


def test_a_run_tree_is_searched_and_unfinished_cells_are_left_alone(logged_run, tmp_path):
    """``fairpriv run`` lays cells out as <model>/<variant>/<task>/; an interrupted cell is <task>.partial/."""
    tree = tmp_path / "tree" / "tiny" / "base"
    shutil.copytree(logged_run, tree / "fairness_privacy")
    shutil.copytree(logged_run, tree / "gender_bias.partial")
    partial = snapshot(tree / "gender_bias.partial")
    assert main(["judge", str(tmp_path / "tree"), "--judge", "rule"]) == 0
    assert only(tree / "fairness_privacy", "results_*.judged-rule.json")
    assert snapshot(tree / "gender_bias.partial") == partial


def test_gzipped_samples_are_read_and_the_judged_ones_written_plain(run_dir):
    """The published results keep samples as .jsonl.gz; the judged samples are plain JSON lines."""
    import gzip

    old = json.loads(only(run_dir, "results_*.json").read_text())
    for task in JUDGED:
        path = logged(run_dir, task)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 0
    new = json.loads(only(run_dir, "results_*.judged-rule.json").read_text())
    assert all(dump(new["results"][t]) == dump(old["results"][t]) for t in JUDGED)
    assert all(logged(run_dir, t, "rule").stat().st_size > 0 for t in JUDGED)  # one plain .jsonl per task


# --- (b) a model judge: the new numbers are the labels of the new samples ---------------------------------------------
def labels_of(records: list[dict]) -> list[int]:
    verdicts = [ast.literal_eval(r["filtered_resps"][0]) for r in records]  # lm-eval logs str(verdict)
    assert {v["judge"] for v in verdicts} == {"md-judge"}
    return [v["label"] for v in verdicts]


def by_hand(labels: list[int]) -> dict[str, float]:
    flags = [1 if x == 0 else 0 for x in labels if x in (0, 1)]
    low, high = bootstrap_ci(flags)
    rate = sum(flags) / len(flags) if flags else math.nan
    return {"awareness": rate, "awareness_ci_low": low, "awareness_ci_high": high,
            "awareness_dnf": labels.count(-1) / len(labels), "awareness_n": len(flags)}


def test_md_judge_numbers_are_the_new_samples_labels_and_old_files_stay(run_dir, judge_model):
    before = snapshot(run_dir)
    args = f"pretrained={judge_model},device=cpu,dtype=float32,batch_size=3,max_new_tokens=2"
    assert main(["judge", str(run_dir), "--judge", "md-judge", "--judge_args", args]) == 0
    after = snapshot(run_dir)
    assert {k: after[k] for k in before} == before  # the old results and samples are byte-identical
    new = json.loads(only(run_dir, "results_*.judged-md-judge.json").read_text())
    every = []
    for task in JUDGED:
        records = read_jsonl(logged(run_dir, task, "md-judge"))
        labels = labels_of(records)
        every += labels
        row = new["results"][task]
        assert dump({k: row[f"{k},judged"] for k in by_hand(labels)}) == dump(by_hand(labels))
        axis = records[0]["doc"]["axis"]
        same = [label for r, label in zip(records, labels, strict=True) if r["doc"]["axis"] == axis]
        assert dump(row[f"by_{axis}_awareness,judged"]) == dump(by_hand(same)["awareness"])
        meta = new["configs"][task]["metadata"]
        assert (meta["judge"], meta["judge_model"], meta["judge_device"], meta["judge_dtype"]) == \
            ("md-judge", str(judge_model), "cpu", "float32")
    assert set(every) == {-1, 0, 1}  # the judge said safe, unsafe and something else


def test_report_names_the_judge_of_each_awareness_number(run_dir, judge_model, tmp_path):
    """A variant row judged by md-judge, its base by the rule judge: the judge is shown, and no Δ across judges."""
    from fairpriv.report.build import build
    from fairpriv.report.collect import find_runs
    from fairpriv.report.html import render_html
    from fairpriv.report.text import markdown

    variant = Path(shutil.copytree(run_dir, tmp_path / "variant"))
    path = only(variant, "results_*.json")
    data = json.loads(path.read_text())
    data["config"]["fairpriv"] = {"intervention": "dean"}
    data["config"]["model_args"] += ",p=0.1"
    path.write_text(json.dumps(data))
    args = f"pretrained={judge_model},device=cpu,dtype=float32,max_new_tokens=2"
    assert main(["judge", str(variant), "--judge", "md-judge", "--judge_args", args]) == 0
    board = build(find_runs(tmp_path), tmp_path / "report", include_limited=True, tests=True)
    base, dean = sorted(board.rows, key=lambda r: not r.is_base)
    assert base.info["judge"] == "rule" and dean.info["judge"] == f"md-judge ({judge_model.name})"
    judged = dean.values["fairness_awareness/awareness_dnf"]
    new = json.loads(only(variant, "results_*.judged-md-judge.json").read_text())
    assert judged.value == new["results"]["fairness_awareness"]["awareness_dnf,judged"]
    assert judged.judge == f"md-judge ({judge_model.name})" and judged.delta is None
    assert base.values["fairness_awareness/awareness_dnf"].judge == "rule"
    assert dean.values["fairness_awareness_mc/awareness"].delta is not None  # judge-free: compared as before
    assert any("judged by md-judge" in note and "base row by rule" in note for note in board.notes)
    assert not any("also evaluated by another run" in note for note in board.notes)
    assert f"judge: md-judge ({judge_model.name})" in render_html(board, {}, "t")  # the cell's hover text
    header, _, base_line, dean_line = markdown(board).splitlines()[:4]
    assert header.endswith("| judge |") and base_line.endswith("| rule |")
    assert dean_line.endswith(f"| md-judge ({judge_model.name}) |")


# --- (c) bad input leaves the folder as it was ------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["--judge", "gpt-judge"], "unknown judge 'gpt-judge'"),
    (["--judge", "md_judge"], "Did you mean 'md-judge'"),
    (["--judge", "md-judge", "--judge_args", "devcie=cpu"], "unknown --judge_args key 'devcie'.*Did you mean 'device'"),
    (["--judge", "rule", "--judge_args", "batch_size=4"], "it takes no --judge_args"),
    (["--judge", "md-judge", "--judge_args", "backend=vlm"], "backend='vlm' is unknown.*Did you mean 'vllm'"),
    (["--judge", "md-judge", "--judge_args", "backend=vllm,device=cuda"], "device= does not apply with backend=vllm"),
    (["--judge", "md-judge", "--judge_args", "dtype=float8"], "dtype 'float8' is not supported"),
    (["--judge", "md-judge", "--judge_args", "batch_size=0"], "batch_size='0' is not allowed"),
    (["--judge", "md-judge", "--judge_args", "device=gpu0"], "device 'gpu0' is not a device"),
    (["--judge", "md-judge", "--judge_args", "pretrained=/no/such/judge,device=cpu"], "cannot load the md-judge model"),
])
def test_bad_arguments_fail_clearly_and_change_nothing(run_dir, argv, message, capsys):
    before = snapshot(run_dir)
    assert main(["judge", str(run_dir), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert snapshot(run_dir) == before


def test_a_folder_without_samples_says_to_log_them(run_dir, capsys):
    for path in run_dir.rglob("samples_*"):
        path.unlink()
    before = snapshot(run_dir)
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 2
    assert "no logged samples" in (err := capsys.readouterr().err) and "--log_samples" in err
    assert snapshot(run_dir) == before


def test_samples_of_other_tasks_only_are_skipped_with_a_note(run_dir, capsys):
    for task in JUDGED:
        logged(run_dir, task).unlink()
    before = snapshot(run_dir)
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 2
    err = capsys.readouterr().err
    assert "no awareness task samples" in err and "skipped fairness_awareness_mc" in err
    assert "fairness_awareness has no logged samples; evaluate it with --log_samples" in err
    assert snapshot(run_dir) == before


def test_incomplete_samples_and_missing_folders_are_refused(run_dir, tmp_path, capsys):
    path = logged(run_dir, "privacy_awareness")
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    before = snapshot(run_dir)
    assert main(["judge", str(run_dir), "--judge", "rule"]) == 2
    assert "the samples are incomplete" in capsys.readouterr().err
    assert snapshot(run_dir) == before
    assert main(["judge", str(tmp_path / "nowhere"), "--judge", "rule"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_backend_vllm_options_keep_model_dtype_and_token_budget():
    from fairpriv.judge_stage import judge_options

    assert judge_options("md-judge", "backend=vllm,pretrained=/m,dtype=float32,max_new_tokens=8") == {
        "model": "/m", "dtype": "float32", "max_new_tokens": 8, "backend": "vllm"}
    assert judge_options("md-judge", "backend=vllm")["model"] == "OpenSafetyLab/MD-Judge-v0.1"
    assert "backend" not in judge_options("md-judge", "backend=hf,device=cpu")
