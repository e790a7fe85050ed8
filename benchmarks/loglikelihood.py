"""fairpriv's log-likelihood scoring against lm-eval's own HFLM, side by side in one process, on the demo's
log-likelihood tasks with the embedded SmolLM2-135M-Instruct (float32, batch 16, the same lm-eval requests):

* ``fairness_awareness_mc`` and ``privacy_awareness_mc`` (two options per probe: the context is computed once, logits
  only where read);
* ``bold_wiki_perplexity`` (rolling windows of all documents sorted by length instead of batched in document order).

For each: wall time of each engine (alternating HF, fairpriv, HF, fairpriv with ``--repeat 2``, best of each), the
speed ratio, the largest log-likelihood difference and, for the multiple-choice tasks, how many probes pick the same
option (argmax, as the ``awareness`` metric reads it); also the token slots each fed to the model.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/loglikelihood.py [--n 10000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

from engines import best_options, task_requests

TASKS = ("fairness_awareness_mc", "privacy_awareness_mc", "bold_wiki_perplexity")


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000, help="documents per task (default: all)")
    p.add_argument("--repeat", type=int, default=1, help="timings per engine, alternating (default 1)")
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    p.add_argument("--model", default="fairpriv:smollm2-135m-instruct-q4_1")
    return p.parse_args()


def models(path: str):
    from lm_eval.models.huggingface import HFLM

    from fairpriv.models.hf import PlainLM

    common = dict(pretrained=path, dtype="float32", device="cpu", batch_size=16)
    return HFLM(**common), PlainLM(**common)


def count_slots(lm) -> list[int]:
    slots: list[int] = []
    lm.model.register_forward_pre_hook(lambda m, a, kw: slots.append((kw.get("input_ids", a[0] if a else None)).numel()),
                                       with_kwargs=True)
    return slots


def score(lm, requests: list, rolling: bool):
    batch = copy.deepcopy(requests)
    start = time.perf_counter()
    values = lm.loglikelihood_rolling(batch, disable_tqdm=True) if rolling else lm.loglikelihood(batch, disable_tqdm=True)
    return values, time.perf_counter() - start


def compare(task: str, requests: list, hf, ours, slots: tuple[list, list], repeat: int) -> tuple[float, float]:
    rolling = requests[0].request_type == "loglikelihood_rolling"
    times: dict[str, list[float]] = {"hf": [], "ours": []}
    used = {}
    for _ in range(repeat):
        for name, lm, seen in (("hf", hf, slots[0]), ("ours", ours, slots[1])):
            before = len(seen)
            values, seconds = score(lm, requests, rolling)
            times[name].append(seconds)
            used[name] = (values, sum(seen[before:]))
    (v_hf, s_hf), (v_ours, s_ours) = used["hf"], used["ours"]
    flat = (lambda v: v) if rolling else (lambda v: [x[0] for x in v])
    diff = max(abs(a - b) for a, b in zip(flat(v_hf), flat(v_ours)))
    t_hf, t_ours = min(times["hf"]), min(times["ours"])
    line = (f"{task:24s} {len(requests):5d} req  HF {t_hf:7.1f} s  fairpriv {t_ours:7.1f} s  {t_hf / t_ours:5.2f}x  "
            f"token slots {s_hf:6d} -> {s_ours:6d}  max |diff| {diff:.1e}")
    if not rolling:
        a, b = best_options(requests, v_hf), best_options(requests, v_ours)
        greedy = sum(x[1] == y[1] for x, y in zip(v_hf, v_ours))
        line += f"  same option {sum(a[d] == b[d] for d in a)}/{len(a)}  same greedy flag {greedy}/{len(v_hf)}"
    print(line, flush=True)
    return t_hf, t_ours


def main() -> None:
    import torch

    import fairpriv  # noqa: F401  (fairpriv's tasks and asset names for lm-eval)
    from fairpriv.modelref import resolve

    opts = args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    hf, ours = models(str(resolve(opts.model)))
    slots = (count_slots(hf), count_slots(ours))
    print(f"threads {torch.get_num_threads()}; batch 16; float32; HF = lm-eval's HFLM, fairpriv = PlainLM "
          f"(what <name>-hf and fairpriv run's plain cells use)")
    totals = [compare(task, task_requests(task, opts.n), hf, ours, slots, opts.repeat) for task in opts.tasks]
    t_hf, t_ours = sum(t[0] for t in totals), sum(t[1] for t in totals)
    print(f"{'all':24s} HF {t_hf:7.1f} s  fairpriv {t_ours:7.1f} s  {t_hf / t_ours:5.2f}x")


if __name__ == "__main__":
    main()
