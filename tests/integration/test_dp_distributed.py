"""DP fine-tuning shared over several processes against the same fit in one process (CPU, gloo).

Two gloo processes (``torch.multiprocessing.spawn``) each fit ``dp`` with LoRA on the tiny random llama; the
same configs are fitted in this process alone. The arithmetic is checked with values:

* noise 0, sample rate 1 (every sequence in every logical batch): the union of the two ranks' clipped sums is the
  one-process clipped sum, so the trained weights are equal to float tolerance; the same at sample rate 1/2 and
  with noise 1 (each rank keeps its shard of the one global Poisson batch, rank 0 draws the one-process noise),
  in hooks and book-keeping mode, LoRA and full fine-tuning;
* noise once per step: at noise multiplier 100 the gradient AdamW receives has standard deviation
  sigma * C / E over its coordinates (E the expected batch size), in both runs, not sqrt(2) times it;
* the facts: the same sample rate, noise, steps and accountant epsilon; ``world_size`` 2 and one noise draw per
  step over all ranks.

The last test runs the real command, ``torchrun --nproc_per_node 2 -m fairpriv fit dp``, and compares its
artifact with ``fairpriv fit`` in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

RECORDS = [{"prompt": f"Question {i}: what is {i} plus {i * 7}?", "response": f" It is {i * 8}." * (1 + i % 3)}
           for i in range(8)]
BASE = dict(method="lora", lora_r=4, max_grad_norm=0.05, seed=3, dp_delta=1e-3, lr=1e-2)
CONFIGS = {
    "rate 1, noise 0": dict(BASE, noise_multiplier=0.0, train_batch_size=8, epochs=3),
    "rate 1/2, noise 1": dict(BASE, noise_multiplier=1.0, train_batch_size=4, epochs=2),
    "rate 1/2, noise 100": dict(BASE, noise_multiplier=100.0, train_batch_size=4, epochs=1),
    "book-keeping, LoRA": dict(BASE, noise_multiplier=1.0, train_batch_size=4, grad_sample_mode="bookkeeping"),
    "book-keeping, full": dict(BASE, noise_multiplier=1.0, train_batch_size=4, method="full", lr=1e-3),
}
SAME_FACTS = ("sample_rate", "noise_multiplier", "planned_steps", "accountant_steps", "steps", "epsilon",
              "expected_batch_size", "delta")


def fit_all(folder: str, names: list[str]) -> dict[str, dict]:
    """Every config fitted (in this process, or as one rank of a group): facts, trained weights, and the
    gradient handed to AdamW at each step."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fairpriv.interventions.training.distributed import process_group
    from fairpriv.interventions.training.dp import DP, DPConfig

    out, tok = {}, AutoTokenizer.from_pretrained(folder)
    with process_group("cpu"), AdamWGradients() as grads:
        for name in names:
            kw, model = CONFIGS[name], AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            grads.clear()
            trained, facts = DP(DPConfig(**kw)).train(model, tok, RECORDS)
            out[name] = {"facts": facts, "weights": {k: v.clone() for k, v in trained.state_dict().items()},
                         "grads": list(grads)}
    return out


class AdamWGradients(list):
    """Records, at every AdamW step, the gradient it receives (all trainable parameters, flattened)."""

    def __enter__(self) -> "AdamWGradients":
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self._handle = register_optimizer_step_pre_hook(self._on_step)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def _on_step(self, opt, args, kwargs) -> None:
        if type(opt) is torch.optim.AdamW:
            self.append(torch.cat([p.grad.reshape(-1) for g in opt.param_groups for p in g["params"]]).clone())


def _rank_main(rank: int, world: int, folder: str, port: int, out_dir: str, names: list[str]) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(fit_all(folder, names), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_and_fit(folder: Path, names: list[str], out_dir: Path) -> tuple[dict, list[dict]]:
    """(one-process results, [rank 0 results, rank 1 results]) for the configs ``names``."""
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(2, str(folder), free_port(), str(out_dir), names), nprocs=2, join=True)
    ranks = [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return fit_all(str(folder), names), ranks


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory) -> tuple[dict, list[dict]]:
    """Every config in one spawn (starting the processes costs far more than the tiny fits)."""
    return spawn_and_fit(tiny_model, list(CONFIGS), tmp_path_factory.mktemp("ranks"))


def assert_close(a: dict, b: dict, rtol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=1e-7, msg=k)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_train_the_one_process_weights(runs, tiny_model, name):
    from transformers import AutoModelForCausalLM

    single, ranks = runs
    assert_close(ranks[0][name]["weights"], single[name]["weights"])
    assert_close(ranks[1][name]["weights"], ranks[0][name]["weights"], rtol=0)  # the ranks stay identical
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).state_dict()
    moved = max(float((v - base[k]).abs().max()) for k, v in single[name]["weights"].items())
    assert moved > 1e-4  # training changed the weights: the comparison is not vacuous


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_have_the_one_process_privacy_facts(runs, name):
    single, ranks = runs
    one, two = single[name]["facts"], ranks[0][name]["facts"]
    for key in SAME_FACTS:
        assert two[key] == pytest.approx(one[key]), key
    assert (one["world_size"], two["world_size"], ranks[1][name]["facts"]["world_size"]) == (1, 2, 2)
    for facts in (one, two):
        assert facts["noise_draws"] == facts["accountant_steps"] == facts["planned_steps"]
        assert facts["noise_once_per_step"] is True
    if CONFIGS[name]["noise_multiplier"] > 0:
        assert two["epsilon"] > 0


def test_noise_is_added_once_per_step(runs):
    """At noise 100 the gradient is noise: its std over the coordinates is sigma * C / E (E = 8 * 1/2 = 4), the
    same in both runs; noise from both ranks would make it sqrt(2) times that (or twice, with one seed)."""
    single, ranks = runs
    kw = CONFIGS["rate 1/2, noise 100"]
    expected = kw["noise_multiplier"] * kw["max_grad_norm"] / 4
    for grads in (single["rate 1/2, noise 100"]["grads"], ranks[0]["rate 1/2, noise 100"]["grads"]):
        assert len(grads) == 2 and grads[0].numel() > 3000
        for g in grads:
            assert float(g.std()) == pytest.approx(expected, rel=0.05)
    for g1, g2 in zip(single["rate 1/2, noise 100"]["grads"], ranks[0]["rate 1/2, noise 100"]["grads"]):
        torch.testing.assert_close(g2, g1, rtol=1e-5, atol=1e-6)  # the very same noise, drawn once


# ---- the command itself ------------------------------------------------------------------------------------------

ARGS = ("method=lora,lora_r=4,data=builtin,n_samples=8,train_batch_size=4,epochs=1,noise_multiplier=1.0,"
        "max_grad_norm=0.05,lr=0.01,seed=3,dp_delta=0.001")


def test_torchrun_fit_dp_writes_the_one_process_artifact(tiny_model, tmp_path, fairpriv_home):
    from safetensors.torch import load_file

    from fairpriv.fit import fit_from_args

    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FAIRPRIV_HOME": str(fairpriv_home)}
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "fairpriv", "fit",
           "dp", "--model_args", f"pretrained={tiny_model},{ARGS}", "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    one = fit_from_args("dp", f"pretrained={tiny_model},{ARGS}", out=tmp_path / "one")
    facts = [json.loads((tmp_path / d / "manifest.json").read_text())["facts"] for d in ("two", "one")]
    assert (facts[0]["world_size"], facts[1]["world_size"]) == (2, 1)
    for key in SAME_FACTS:
        assert facts[0][key] == pytest.approx(facts[1][key]), key
    assert facts[0]["noise_draws"] == facts[0]["accountant_steps"] == 2
    weights = [load_file(tmp_path / d / "model" / "model.safetensors") for d in ("two", "one")]
    assert_close(weights[0], weights[1])
    assert not [p for p in tmp_path.iterdir() if p.name not in ("one", "two")]  # no stray rank output
    assert one.path == tmp_path / "one"
