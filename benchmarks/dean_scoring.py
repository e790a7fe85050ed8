"""DEAN scoring: fairpriv's packed procedure and its one-backward-per-example procedure against the released
layer-by-layer procedure.

Target (issue 15): on the embedded 30-layer model at n >= 16, at least 18x faster than the layer-by-layer procedure
with identical top lists and masks, and extra memory near one copy of the scored weights. The three procedures run
side by side in one invocation, each in its own child process (so one's peak memory cannot hide another's), on the
same model, data and float32 arithmetic:

* reference: for each decoder layer, every example forward and backward again, gradients only for that layer,
  every full score tensor of the three data sets kept until the selection (n x layers x 3 backward passes);
* one-backward: one backward per example for all layers, autograd's weight gradients, |grad| added into one
  float32 accumulator by a hook, each data set reduced to per-matrix top lists before the next one starts
  (n x 3 backward passes; fairpriv before issue 15, ``pack_tokens=None``);
* fairpriv: consecutive examples packed into one sequence of up to ``--pack-tokens`` tokens per forward and
  backward, attention per example, no weight gradient from autograd: each example's gradient of each scored matrix
  is formed from the layer's input and output gradient over that example's tokens, then added as before.

Memory is the peak resident set size sampled every 5 ms during scoring minus the size just before scoring, after
one untimed forward pass that pages the model's weights in (they may be memory-mapped; before issue 15 that paging,
about 500 MiB on the embedded model, was counted as extra memory of every procedure). The
script prints the times, both ratios, the peak extra memory of each and whether the selected masks (and the top
lists) equal the reference's.

    python benchmarks/dean_scoring.py [--n 16] [--pack-tokens 128] [--target mlp] [--p 1e-3]
        [--model fairpriv:smollm2-135m-instruct-q4_1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KINDS = ("utility", "privacy", "fairness")


class PeakRSS:
    """Sample this process's resident set size in a thread; ``extra`` is the peak above the start, in bytes."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def extra(self) -> int:
        return self.peak - self.start


def load(args):
    import torch

    from fairpriv.data.pairs import load_pairs
    from fairpriv.fit import load_model
    from fairpriv.interventions.dean.score import encode_all, target_modules

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model, tok = load_model(args.model)
    data = {k: load_pairs("builtin", k, args.n, seed=0).records for k in KINDS}
    examples = {k: encode_all(tok, recs, False, 512)[0] for k, recs in data.items()}
    return model, target_modules(model, args.target), examples


def run_child(args) -> None:
    """One procedure in this process: time, peak extra memory, and the top lists (saved for comparison)."""
    import torch
    from safetensors.torch import save_file

    from fairpriv.interventions.dean import score
    from fairpriv.interventions.dean.select import top_count, topk_stable

    model, modules, examples = load(args)
    k_of = lambda n: top_count(args.p, n)  # noqa: E731
    with torch.no_grad():  # page the model's weights in (they may be memory-mapped): not part of the extra memory
        score.example_loss(model, examples["privacy"][0])
    start = time.perf_counter()
    with PeakRSS() as mem:
        if args.child in ("fairpriv", "one-backward"):
            pack = args.pack_tokens if args.child == "fairpriv" else None
            lists = {k: score.top_lists(model, modules, examples[k], k_of, pack_tokens=pack) for k in KINDS}
        else:
            full = {k: score.layerwise_scores(model, modules, examples[k]) for k in KINDS}
            lists = {k: {n: topk_stable(s, k_of(s.numel())) for n, s in full[k].items()} for k in KINDS}
    seconds = time.perf_counter() - start
    save_file({f"{k}/{n}": v.contiguous() for k in KINDS for n, v in lists[k].items()}, args.out)
    weights = sum(m.weight.numel() * 4 for m in modules.values())
    print(json.dumps({"seconds": seconds, "extra_bytes": mem.extra, "scored_weight_bytes": weights,
                      "matrices": len(modules), "layers": len({score.layer_of(n) for n in modules})}))


def masks(lists: dict) -> dict:
    """Set-mode selection per matrix; the lists were cut at floor(p * N) already."""
    from fairpriv.interventions.dean.select import select_set

    names = sorted({k.split("/", 1)[1] for k in lists})
    return {n: select_set(lists[f"utility/{n}"], lists[f"privacy/{n}"], lists[f"fairness/{n}"]) for n in names}


def spawn(procedure: str, args, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", procedure, "--out", str(out), "--n", str(args.n),
           "--target", args.target, "--p", str(args.p), "--model", args.model, "--pack-tokens", str(args.pack_tokens)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


PROCEDURES = ("reference", "one-backward", "fairpriv")


def main(args) -> None:
    import torch
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for p in PROCEDURES:
            runs[p] = spawn(p, args, Path(tmp) / f"{p}.safetensors")
            print(f"  {p}: {runs[p]['seconds']:.1f} s", file=sys.stderr, flush=True)
        lists = {p: load_file(str(Path(tmp) / f"{p}.safetensors")) for p in runs}
    ref_masks = masks(lists["reference"])
    same = {}
    for p in PROCEDURES[1:]:
        same_lists = lists[p].keys() == lists["reference"].keys() and all(
            torch.equal(lists[p][k], v) for k, v in lists["reference"].items())
        ours = masks(lists[p])
        same_masks = ours.keys() == ref_masks.keys() and all(torch.equal(ours[n], ref_masks[n]) for n in ours)
        same[p] = (same_masks, same_lists)
    r, o, f = runs["reference"], runs["one-backward"], runs["fairpriv"]
    mb = lambda b: b / 2**20  # noqa: E731
    print(f"model {args.model}: {f['layers']} layers, {f['matrices']} {args.target} matrices, n={args.n} per data "
          f"set, p=q={args.p}, fairpriv packs of up to {args.pack_tokens} tokens, {torch.get_num_threads()} threads")
    print(f"time: layer-by-layer {r['seconds']:.1f} s, one-backward {o['seconds']:.1f} s, fairpriv "
          f"{f['seconds']:.1f} s; ratio layer-by-layer/one-backward {r['seconds'] / o['seconds']:.1f}x, "
          f"layer-by-layer/fairpriv {r['seconds'] / f['seconds']:.1f}x")
    print(f"peak extra memory: layer-by-layer {mb(r['extra_bytes']):.0f} MiB, one-backward "
          f"{mb(o['extra_bytes']):.0f} MiB, fairpriv {mb(f['extra_bytes']):.0f} MiB (one fp32 copy of the scored "
          f"weights is {mb(f['scored_weight_bytes']):.0f} MiB)")
    for p in PROCEDURES[1:]:
        print(f"{p} vs layer-by-layer: masks identical: {same[p][0]} "
              f"({sum(v.numel() for v in ref_masks.values())} entries); top lists identical: {same[p][1]}")


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fairpriv:smollm2-135m-instruct-q4_1")
    ap.add_argument("--n", type=int, default=16, help="examples per data set (the paper uses 128)")
    ap.add_argument("--pack-tokens", type=int, default=128,
                    help="tokens per packed forward and backward (fairpriv; 128 is the library's default)")
    ap.add_argument("--target", default="mlp", choices=("mlp", "attn", "all"))
    ap.add_argument("--p", type=float, default=1e-3, help="p = q, the top fraction per matrix")
    ap.add_argument("--child", choices=PROCEDURES, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    return ap.parse_args()


if __name__ == "__main__":
    ns = parse()
    run_child(ns) if ns.child else main(ns)
