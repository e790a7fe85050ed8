"""Engines side by side on the embedded SmolLM2-135M-Instruct: lm-eval's HF model (HFLM, what ``<name>-hf`` runs)
against lm-eval's vLLM model (what ``<name>-vllm`` runs), on the same lm-eval requests, in one process, one after the
other (same load), float32 on both.

* generation: the first ``--n-gen`` fairness-awareness probes (``fairness_awareness``: the raw question, greedy, at
  most 64 new tokens, EOS the only stop), HF at batch 16 (the default of ``fairpriv run``) and ``--hf-batches``,
  then vLLM; tokens/s counts the generated tokens (re-tokenized outputs) over wall time, and "identical" is the share
  of outputs equal to HF batch 16's, string for string;
* log-likelihood: ``--n-mmlu`` questions of ``mmlu_offline_mini`` (4 options each), HF at batch 16 against vLLM;
  the ratio of wall times and the share of questions whose best option (argmax of the log-likelihoods, as the
  ``acc`` metric takes it) is the same; also the largest log-likelihood difference;
* next-token divergences: the first ``--n-div`` pairs of ``gender_bias_divergence`` (full next-token distributions,
  HF from one forward pass, vLLM from every token's log-probability), HF at batch 16 against vLLM: the ratio of
  wall times and the largest relative difference of any divergence;
* engine start: vLLM's start (process pool, weights, KV cache, warm-up) timed apart; HF's load for comparison;
* ``--compiled``: a second vLLM engine in vLLM's compiled mode (``enforce_eager=false``: the first start traces and
  compiles the model, minutes on 2 cores, cached in ``~/.cache/vllm``), timed on the same generation workload after
  the eager engine, with its own start time.

Targets (issue 19): generation >= 5x HF batch 16 with >= 98% identical outputs; log-likelihood: report the ratio and
>= 99% argmax agreement; whichever engine is faster gets the log-likelihood tasks in ``fairpriv run``.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/engines.py [--n-gen 128] [--n-mmlu 64] [--n-div 100] [--compiled]
"""

from __future__ import annotations

import argparse
import copy
import os
import time


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-gen", type=int, default=128, help="awareness prompts to generate for (default 128)")
    p.add_argument("--n-mmlu", type=int, default=64, help="MMLU questions for log-likelihood (default 64)")
    p.add_argument("--n-div", type=int, default=100, help="gender_bias_divergence pairs (default 100)")
    p.add_argument("--hf-batches", type=int, nargs="*", default=[64], help="more HF batch sizes to time (default 64)")
    p.add_argument("--model", default="fairpriv:smollm2-135m-instruct-q4_1")
    p.add_argument("--compiled", action="store_true", help="also time generation on vLLM's compiled mode")
    return p.parse_args()


def task_requests(name: str, n_docs: int) -> list:
    """The first ``n_docs`` documents' lm-eval requests of task or group ``name`` (subtasks in order)."""
    from lm_eval.tasks import TaskManager, get_task_dict

    tasks, out, left = flatten(get_task_dict([name], TaskManager(include_defaults=False))), [], n_docs
    for task in tasks:
        if left <= 0:
            break
        task.build_all_requests(limit=left, rank=0, world_size=1)
        out += task.instances
        left -= len({inst.doc_id for inst in task.instances})
    return out


def flatten(task_dict: dict) -> list:
    out = []
    for value in task_dict.values():
        out += flatten(value) if isinstance(value, dict) else [value]
    return out


def timed(fn, *a):
    start = time.perf_counter()
    value = fn(*a)
    return value, time.perf_counter() - start


def generated_tokens(tokenizer, outputs: list[str]) -> int:
    return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in outputs)


def best_options(requests: list, values: list) -> dict:
    """doc id -> index of the option with the highest log-likelihood (ties: the first, as lm-eval's acc)."""
    by_doc: dict = {}
    for inst, (ll, _) in zip(requests, values):
        by_doc.setdefault((inst.task_name, inst.doc_id), []).append(ll)
    return {doc: max(range(len(lls)), key=lls.__getitem__) for doc, lls in by_doc.items()}


def hf_model(path: str, batch: int):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=path, dtype="float32", device="cpu", batch_size=batch)


def vllm_model(path: str, **engine_kw):
    from fairpriv.models.vllm import ENGINE_DEFAULTS, cpu_engine_defaults, engine_start_env, vllm_class

    with engine_start_env():  # what <name>-vllm does on a CPU
        return vllm_class()(pretrained=path, dtype="float32", batch_size="auto",
                            **cpu_engine_defaults({**ENGINE_DEFAULTS, **engine_kw}))


def divergences(lm, requests: list) -> list:
    return lm.fairpriv_next_token_divergence(copy.deepcopy(requests))


def main() -> None:
    import torch

    import fairpriv  # noqa: F401  (fairpriv's tasks and asset names for lm-eval)
    from fairpriv.modelref import resolve

    opts = args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    path = str(resolve(opts.model))
    gen, mc = task_requests("fairness_awareness", opts.n_gen), task_requests("mmlu_offline_mini", opts.n_mmlu)
    div = task_requests("gender_bias_divergence", opts.n_div)
    print(f"workload: {len(gen)} generation requests (max 64 new tokens), {len(mc)} log-likelihood requests "
          f"({opts.n_mmlu} MMLU questions); threads {torch.get_num_threads()}")
    hf, load_hf = timed(hf_model, path, 16)
    ref, t_hf = timed(hf.generate_until, copy.deepcopy(gen))
    ll_hf, t_ll_hf = timed(hf.loglikelihood, copy.deepcopy(mc))
    div_hf = timed(divergences, hf, div)
    tokens = generated_tokens(hf.tokenizer, ref)
    rows = [("HF generate, batch 16", t_hf, ref)]
    for batch in opts.hf_batches:
        hf.batch_size_per_gpu = batch  # what HFLM.batch_size reads
        out, t = timed(hf.generate_until, copy.deepcopy(gen))
        rows.append((f"HF generate, batch {batch}", t, out))
    del hf
    llm, start_vllm = timed(vllm_model, path)
    out, t_v = timed(llm.generate_until, copy.deepcopy(gen))
    rows.append(("vLLM generate (enforce_eager, float32)", t_v, out))
    ll_v, t_ll_v = timed(llm.loglikelihood, copy.deepcopy(mc))
    div_v = timed(divergences, llm, div)
    starts = [("vLLM engine start", start_vllm)]
    if opts.compiled:
        del llm
        compiled, start_compiled = timed(lambda: vllm_model(path, enforce_eager=False))
        out, t_c = timed(compiled.generate_until, copy.deepcopy(gen))
        rows.append(("vLLM generate (compiled, float32)", t_c, out))
        starts.append(("vLLM compiled engine start", start_compiled))
    report(rows, tokens, ref, (t_ll_hf, ll_hf), (t_ll_v, ll_v), mc, load_hf, starts)
    report_divergences(div_hf, div_v)


def report(rows, tokens, ref, hf_ll, v_ll, mc, load_hf, starts) -> None:
    print(f"\ngeneration: {len(ref)} prompts, {tokens} generated tokens (HF batch 16's outputs)")
    print(f"{'engine':42s} {'seconds':>8s} {'tokens/s':>9s} {'vs HF b16':>9s} {'identical':>10s}")
    for label, seconds, out in rows:
        same = sum(a == b for a, b in zip(out, ref))
        print(f"{label:42s} {seconds:8.1f} {tokens / seconds:9.1f} {rows[0][1] / seconds:8.2f}x "
              f"{same:>4d}/{len(ref)}")
    agree_hf, agree_v = best_options(mc, hf_ll[1]), best_options(mc, v_ll[1])
    same = sum(agree_hf[d] == agree_v[d] for d in agree_hf)
    diff = max(abs(a[0] - b[0]) for a, b in zip(hf_ll[1], v_ll[1]))
    print(f"\nlog-likelihood: {len(mc)} requests, {len(agree_hf)} questions")
    print(f"HF batch 16 {hf_ll[0]:.1f} s, vLLM {v_ll[0]:.1f} s: vLLM/HF speed {hf_ll[0] / v_ll[0]:.2f}x; "
          f"argmax agreement {same}/{len(agree_hf)} ({100 * same / len(agree_hf):.1f}%); "
          f"max |log-likelihood difference| {diff:.2e}")
    print(f"\nstart: HF model load {load_hf:.1f} s; " + "; ".join(f"{label} {s:.1f} s" for label, s in starts))


def report_divergences(hf, v) -> None:
    """``hf``, ``v``: (records, seconds) of each engine on the same pairs."""
    keys = ("kl_ab", "kl_ba", "js", "hellinger", "tvd")
    worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for a, b in zip(hf[0], v[0]) for k in keys)
    tops = sum((a["top_a"], a["top_b"]) == (b["top_a"], b["top_b"]) for a, b in zip(hf[0], v[0]))
    print(f"\nnext-token divergences: {len(hf[0])} pairs; HF batch 16 {hf[1]:.1f} s, vLLM {v[1]:.1f} s: vLLM/HF speed "
          f"{hf[1] / v[1]:.2f}x; same top tokens {tops}/{len(hf[0])}; max relative difference {worst:.1e}")


if __name__ == "__main__":  # vLLM starts worker processes: keep the guard
    main()
