"""What DP fine-tuning costs: the time and peak memory of one DP step relative to the same non-private step.

The DP bias-amplification study (arXiv 2402.04489) fine-tunes with DP-Adam; fairpriv's ``dp`` intervention does it
with Opacus per-sample gradients. This script times the *same* step (fairpriv's shared loss and loop pieces, the
same fixed batch, AdamW) on the embedded SmolLM2-135M with and without DP, for

* LoRA (r=8, all linear layers in the decoder blocks) with Opacus hooks (what ``grad_sample_mode=auto`` picks for
  LoRA; ``--setups lora-bookkeeping`` times LoRA with book-keeping, not consistently faster: 1.08-1.32x against
  1.02-1.24x for hooks over runs at 64 and 256 tokens);
* full fine-tuning with book-keeping (what ``auto`` picks for full fine-tuning: per-sample gradient norms from the
  layers' inputs and output gradients, one clip-weighted product per layer, no per-sample gradient tensors; see
  ``fairpriv.interventions.training.dp``);
* full fine-tuning with Opacus hooks, which materialises every per-sample gradient (B x 134.5M floats, twice
  B x 49152 x 576 for the tied embedding / LM head), the mode ``auto`` used before book-keeping;
* full fine-tuning with ghost clipping. SmolLM2 ties its LM head to the input embeddings, which ghost clipping
  refuses (fairpriv says so before Opacus would); the script reports the refusal and then measures ghost on a
  copy whose LM head is untied (one extra 49152 x 576 matrix), to show what ghost would cost.

Time: one child process builds both models (plain and DP) and alternates their steps, so load from other processes
on a shared machine hits both alike; the ratio is taken of the median CPU seconds of the process per step (stable
when other processes compete for the cores; the wall-clock ratio is printed next to it), over ``--steps`` rounds
after one warm-up round. Memory: each mode runs two steps in a fresh child process
(so peaks do not mask each other); after loading and preparing the model, the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs`` = 5); "peak" is ``VmHWM`` afterwards (resident memory, MB) and "extra" is peak minus the
resident size just before the first step, i.e. what training adds on top of the loaded model (gradients, AdamW
state, per-sample gradients, activations). Resident memory, not tracemalloc: torch's tensors are not Python
allocations. Threads follow ``OMP_NUM_THREADS`` (``torch.set_num_threads``).

Caveat: on a VM where page faults are dear, fresh memory costs time (a DP step with hooks faults in ~2.5 GB per
step; the plain step, reusing its buffers, none). The two alternated steps share one allocator, so the plain step
can pay for some of what the DP step freed: time each alone in its own process to cross-check a close ratio.

Targets: LoRA DP <= 1.3x, full DP <= 2x the non-private step time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dp_overhead.py [--steps 5] [--batch 4] [--seq 64] [--setups lora]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

MODEL = "fairpriv:smollm2-135m-instruct-q4_1"
SETUPS = {  # key: (label, method, grad-sample mode, untie the LM head, target time ratio)
    "lora": ("LoRA r=8, hooks", "lora", "hooks", False, 1.3),
    "lora-bookkeeping": ("LoRA r=8, book-keeping", "lora", "bookkeeping", False, 1.3),
    "full-bookkeeping": ("full, book-keeping", "full", "bookkeeping", False, 2.0),
    "full-hooks": ("full, hooks", "full", "hooks", False, 2.0),
    "full-ghost": ("full, ghost", "full", "ghost", False, 2.0),
    "full-ghost-untied": ("full, ghost (untied head)", "full", "ghost", True, 2.0),
}
DEFAULT_SETUPS = [key for key in SETUPS if key != "lora-bookkeeping"]


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def status_mb(field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


# ---- child: one measurement ------------------------------------------------------------------------------------


def fixed_examples(batch: int, seq: int, vocab: int):
    import torch

    from fairpriv.interventions.training.loop import Example

    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(10, vocab, (batch, seq), generator=gen).tolist()
    return [Example(tuple(r), tuple(r)) for r in rows]


def load_model(untie: bool):
    import torch
    from transformers import AutoModelForCausalLM

    from fairpriv.modelref import resolve

    model = AutoModelForCausalLM.from_pretrained(resolve(MODEL), dtype=torch.float32)
    if untie:
        model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
        model.config.tie_word_embeddings = False
    return model


def step_machinery(model, cfg, mode: str | None, batch: int):
    """(optimizer, backward) for the non-private step (mode None) or the DP step of ``mode``."""
    from fairpriv.interventions.training import dp, loop as _train

    if mode is None:
        return _train.make_optimizer(model, cfg), _train.plain_backward(model, 0)
    dp.resolve_mode(model, cfg)
    plan = dp.PrivacyPlan(n=batch, sample_rate=1.0, steps=1, delta=1e-5, delta_rule="given", noise_multiplier=1.0)
    private = dp.make_private(model, cfg, plan, mode)
    return private.optimizer, dp.dp_backward(model, 0, private, mode)


def build(method: str, mode: str | None, untie: bool, args):
    """A prepared model in train mode and its (optimizer, backward) for one step; the fixed examples."""
    from fairpriv.interventions.training import loop as _train
    from fairpriv.interventions.training.dp import DPConfig

    cfg = DPConfig(method=method, noise_multiplier=1.0, train_batch_size=args.batch, lr=1e-5,
                   grad_sample_mode=mode or "auto")
    model = _train.prepare(load_model(untie), cfg).train()
    optimizer, backward = step_machinery(model, cfg, mode, args.batch)
    return (optimizer, backward), fixed_examples(args.batch, args.seq, model.config.vocab_size)


def one_step(machinery, examples) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one forward + backward + optimiser step."""
    optimizer, backward = machinery
    cpu, wall = time.process_time(), time.perf_counter()
    backward(examples, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.process_time() - cpu, time.perf_counter() - wall


def memory(method: str, mode: str | None, untie: bool, args) -> dict:
    """Peak resident memory of two steps (the first allocates AdamW state and per-sample gradients)."""
    machinery, examples = build(method, mode, untie, args)
    base = status_mb("VmRSS")
    reset_peak()
    for _ in range(2):
        one_step(machinery, examples)
    peak = status_mb("VmHWM")
    return {"peak_mb": peak, "extra_mb": peak - base}


def timing(method: str, mode: str, untie: bool, args) -> dict:
    """Median step times of the plain and the DP step, alternated step by step so machine load hits both alike."""
    plain, examples = build(method, None, untie, args)
    private, _ = build(method, mode, untie, args)
    rounds = [(one_step(plain, examples), one_step(private, examples)) for _ in range(1 + args.steps)][1:]
    med = lambda side, kind: statistics.median(r[side][kind] for r in rounds)  # noqa: E731
    return {"plain_cpu": med(0, 0), "dp_cpu": med(1, 0), "plain_wall": med(0, 1), "dp_wall": med(1, 1)}


def child_main(args) -> None:
    import torch

    from fairpriv.interventions.base import ConfigError

    torch.set_num_threads(threads())
    mode = None if args.mode == "none" else args.mode
    try:
        measure = timing if args.timing else memory
        out = measure(args.method, mode, args.untie, args)
    except ConfigError as exc:
        out = {"refused": str(exc)}
    print("RESULT " + json.dumps(out))


# ---- parent: run the children side by side and print ratios ----------------------------------------------------


def run_child(method: str, mode: str | None, untie: bool, args, timing: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--method", method, "--mode", mode or "none", "--steps",
           str(args.steps), "--batch", str(args.batch), "--seq", str(args.seq)]
    cmd += (["--untie"] if untie else []) + (["--timing"] if timing else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"benchmark child failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def measure_setup(method: str, mode: str, untie: bool, args) -> dict:
    private = run_child(method, mode, untie, args)
    if "refused" in private:
        return private
    plain = run_child(method, None, untie, args)
    return {**run_child(method, mode, untie, args, timing=True), "plain_mem": plain, "dp_mem": private}


def row(label: str, m: dict, target: float) -> str:
    if "refused" in m:
        return f"{label:<26} refused: {m['refused']}"
    plain, dp = m["plain_mem"], m["dp_mem"]
    cpu, wall = m["dp_cpu"] / m["plain_cpu"], m["dp_wall"] / m["plain_wall"]
    peak, extra = dp["peak_mb"] / plain["peak_mb"], dp["extra_mb"] / plain["extra_mb"]
    return (f"{label:<26} {m['plain_cpu']:6.2f} {m['dp_cpu']:6.2f} {cpu:5.2f}x {'ok' if cpu <= target else 'OVER':<4} "
            f"{target:<4} {wall:5.2f}x   {plain['peak_mb']:6.0f} {dp['peak_mb']:6.0f} {peak:5.2f}x"
            f"  {plain['extra_mb']:6.0f} {dp['extra_mb']:6.0f} {extra:5.2f}x")


def parent_main(args) -> None:
    print(f"DP overhead on {MODEL}: batch {args.batch} x {args.seq} tokens, {threads()} thread(s)")
    print(f"time: plain and DP steps alternated in one process, median of {args.steps} rounds after 1 warm-up;")
    print("      CPU seconds of the process (robust to other load on a shared machine) and the wall-clock ratio")
    print("memory: resident set of a fresh process per mode over 2 steps; peak = VmHWM, extra = peak minus RSS "
          "before step 1")
    print(f"{'setup':<26} {'CPU s':>6} {'DP':>6} {'ratio':>6} {'':<4} {'max':<4} {'wall':>6}   "
          f"{'peakMB':>6} {'DP':>6} {'ratio':>6}  {'extra':>6} {'DP':>6} {'ratio':>6}")
    for key in args.setups.split(","):
        label, method, mode, untie, target = SETUPS[key]
        print(row(label, measure_setup(method, mode, untie, args), target), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--setups", default=",".join(DEFAULT_SETUPS),
                        help=f"comma-separated subset of {', '.join(SETUPS)}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="lora", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--untie", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    main()
