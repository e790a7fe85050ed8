"""The Python half of ``benchmarks/gpu_smoke.sh`` (run that; its header says what this checks and how).

The driver builds a tiny random Llama with a tokenizer trained on the spot (nothing downloaded), then, per dtype,
fits every variant with the ``fairpriv fit`` command and evaluates the plain model and each artifact with lm-eval in
a fresh process (``eval`` below), so that one step's crash or CUDA error cannot take the others with it. Each step
prints ``PASS step dtype seconds [note]`` or ``FAIL step dtype: reason``; the exit status is 1 when any step failed.

    python benchmarks/gpu_smoke.py [--device cuda] [--dtypes "bfloat16 float32"] [--work DIR] [--limit 4]
    python benchmarks/gpu_smoke.py eval NAME MODEL_DIR ARTIFACT|- DEVICE DTYPE LIMIT    (one evaluation; internal)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "fairpriv_sanity"  # packaged with fairpriv: 40 four-way multiple-choice questions, no download
CORPUS = [
    "The number after one is two, and the number after two is three.",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Question: what do bees make? Answer: honey.",
    "I cannot share private contact details; that would violate their privacy.",
    "No, ability does not depend on gender. Intelligence varies by person.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
]
TRAIN = "n_samples=8,train_batch_size=4,train_max_length=96,epochs=1,lr=1e-3"  # ~1 token per character here
VARIANTS = {  # step name -> (intervention, its small config); each is fitted, then evaluated from its artifact
    "dean": ("dean", "p=0.05,q=0.05,n_samples=4,score_max_length=96"),
    "sft-lora": ("sft", f"method=lora,{TRAIN}"),
    "dp-lora-hooks": ("dp", f"method=lora,{TRAIN},epsilon=8,max_grad_norm=1.0,grad_sample_mode=hooks"),
    "dp-lora-bookkeeping": ("dp", f"method=lora,{TRAIN},epsilon=8,max_grad_norm=1.0,grad_sample_mode=bookkeeping"),
}
STEP_TIMEOUT = float(os.environ.get("STEP_TIMEOUT", 300))


# ---- the tiny model ----------------------------------------------------------------------------------------------
def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama (hidden 64) with a byte-level BPE tokenizer trained on CORPUS, saved in float32."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging

    logging.disable_progress_bar()

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<pad>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, attention_dropout=0.0, tie_word_embeddings=False)
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


# ---- one evaluation (in its own process) -------------------------------------------------------------------------
def evaluate(name: str, model_dir: str, artifact: str | None, device: str, dtype: str, limit: int) -> str:
    """Evaluate ``name``-hf (``base``: lm-eval's plain hf) on TASK; check where the weights are, that the artifact
    was applied and that the accuracy is a fraction; return a note for the PASS line."""
    import lm_eval
    import torch
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    import fairpriv  # noqa: F401  (registers the <name>-hf models and the task folder)

    args = f"pretrained={model_dir},device={device},dtype={dtype}" + (f",artifact={artifact}" if artifact else "")
    lm = get_model("hf" if name == "base" else f"{name}-hf").create_from_arg_string(args, {"batch_size": 4})
    weight = lm.model.get_input_embeddings().weight
    check(weight.dtype == getattr(torch, dtype), f"weights are {weight.dtype}, not {dtype}")
    check(weight.device.type == torch.device(device).type, f"weights are on {weight.device}, not {device}")
    results = lm_eval.simple_evaluate(model=lm, tasks=[TASK], task_manager=TaskManager(include_defaults=False),
                                      limit=limit)
    acc = results["results"][TASK]["acc,none"]
    check(isinstance(acc, float) and 0.0 <= acc <= 1.0, f"accuracy {acc!r} is not a fraction")
    if artifact:
        applied = results["config"].get("fairpriv", {}).get("artifact_hash")
        check(applied == artifact_hash(name, artifact), f"artifact {applied!r} applied, not the one fitted")
    return f"acc={acc:.2f} on {limit} items, weights {str(weight.dtype)[6:]} on {weight.device}"


def artifact_hash(name: str, folder: str) -> str:
    from fairpriv.artifacts import load_artifact

    return load_artifact(Path(folder), name).hash


def fit_note(name: str, folder: Path, dtype: str) -> str:
    """What the fit's manifest says, in a few words, after checking the dtype and the numbers a working fit gives."""
    from fairpriv.artifacts import load_artifact

    manifest = load_artifact(folder, name).manifest
    check(manifest.get("dtype", "float32") == dtype, f"fitted in {manifest.get('dtype', 'float32')}, not {dtype}")
    facts = manifest.get("facts", {})
    if name == "dean":
        total = facts["total"]
        check(0 < total["zeroed"] < total["numel"], f"zeroed {total['zeroed']} of {total['numel']} weights")
        return f"zeroed {total['zeroed']} of {total['numel']}"
    check(facts.get("steps", 0) >= 1, f"{facts.get('steps')!r} training steps")
    if name == "dp":
        check(math.isfinite(facts["epsilon"]) and 0 < facts["epsilon"] <= 8.0, f"epsilon {facts['epsilon']!r}")
        return f"{facts['steps']} steps, epsilon {facts['epsilon']:.2f}, {facts['grad_sample_mode']}"
    return f"{facts['steps']} steps"


def check(ok: bool, problem: str) -> None:
    if not ok:
        raise AssertionError(problem)


# ---- the driver --------------------------------------------------------------------------------------------------
class Steps:
    """Runs steps, prints one PASS/FAIL line each, counts them."""

    def __init__(self) -> None:
        self.passed, self.failed = 0, 0

    def run(self, step: str, dtype: str, action) -> bool:
        started = time.monotonic()
        try:
            note = action()
        except Exception as exc:  # noqa: BLE001  (every failure becomes one FAIL line)
            self.failed += 1
            print(f"FAIL {step} {dtype}: {reason(exc)}", flush=True)
            return False
        self.passed += 1
        print(f"PASS {step} {dtype} {time.monotonic() - started:.1f}s{f' ({note})' if note else ''}", flush=True)
        return True


def reason(exc: BaseException) -> str:
    """One line: a failed command's last meaningful stderr line, else the exception."""
    if isinstance(exc, subprocess.CalledProcessError):
        lines = [line for line in (exc.stderr or "").splitlines() if line.strip()]
        return f"exit {exc.returncode}: {lines[-1].strip() if lines else 'no message'}"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"took longer than {exc.timeout:.0f} s (STEP_TIMEOUT)"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def command(args: list[str], env: dict[str, str]) -> str:
    """Run ``args``; return its stdout's last line (raises with its stderr on failure)."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True)
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def fit(name: str, config: str, model: Path, out: Path, device: str, dtype: str, env: dict[str, str]) -> str:
    model_args = f"pretrained={model},dtype={dtype},device={device},{config}"
    command([sys.executable, "-m", "fairpriv.cli", "fit", name, "--model_args", model_args, "--out", str(out)], env)
    return fit_note(name, out, dtype)


def evaluate_in_child(name: str, model: Path, artifact: Path | None, device: str, dtype: str, limit: int,
                      env: dict[str, str]) -> str:
    if artifact is not None and not artifact.is_dir():
        raise RuntimeError("no artifact to evaluate (its fit failed)")
    return command([sys.executable, __file__, "eval", name, str(model), str(artifact or "-"), device, dtype,
                    str(limit)], env)


def environment(work: Path) -> dict[str, str]:
    """Offline, and with fresh caches: a cached score or artifact would skip the very code this checks."""
    return {**os.environ, "FAIRPRIV_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def describe(device: str) -> str:
    import torch

    from importlib.metadata import version

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    versions = ", ".join(f"{p} {version(p)}" for p in ("fairpriv", "transformers", "peft", "opacus", "lm_eval"))
    return f"{gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}); {versions}"


def smoke(device: str, dtypes: list[str], work: Path, limit: int) -> int:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"FAIL setup {device}: torch {torch.__version__} sees no CUDA device; run with DEVICE=cpu to check the "
              "script without one", flush=True)
        return 1
    print(f"gpu_smoke on {device}: {describe(device)}; work folder {work}", flush=True)
    env, steps, started = environment(work), Steps(), time.monotonic()
    model = work / "tiny-llama"
    if steps.run("build:tiny-llama", "float32", lambda: build_tiny_model(model).name):
        for dtype in dtypes:
            run_dtype(steps, model, work / dtype, device, dtype, limit, env)
    print(f"SUMMARY {steps.passed} passed, {steps.failed} failed in {time.monotonic() - started:.0f} s on {device} "
          f"({', '.join(dtypes)})", flush=True)
    return 1 if steps.failed else 0


def run_dtype(steps: Steps, model: Path, folder: Path, device: str, dtype: str, limit: int, env) -> None:
    steps.run("eval:base", dtype, lambda: evaluate_in_child("base", model, None, device, dtype, limit, env))
    for step, (name, config) in VARIANTS.items():
        out = folder / step
        steps.run(f"fit:{step}", dtype, lambda: fit(name, config, model, out, device, dtype, env))
        steps.run(f"eval:{step}", dtype, lambda: evaluate_in_child(name, model, out, device, dtype, limit, env))


def main(argv: list[str]) -> int:
    if argv[:1] == ["eval"]:
        name, model, artifact, device, dtype, limit = argv[1:7]
        print(evaluate(name, model, None if artifact == "-" else artifact, device, dtype, int(limit)))
        return 0
    parser = argparse.ArgumentParser(description="fit and evaluate DEAN, SFT LoRA and DP LoRA on a tiny model")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="bfloat16 float32", help="space- or comma-separated")
    parser.add_argument("--work", type=Path, help="folder for the model, artifacts and caches (default: a temp one)")
    parser.add_argument("--limit", type=int, default=4, help=f"items of {TASK} per evaluation")
    args = parser.parse_args(argv)
    dtypes = args.dtypes.replace(",", " ").split()
    if args.work is not None:
        if args.work.exists() and any(args.work.iterdir()):
            parser.error(f"--work {args.work} is not empty; give a new folder (the fits refuse to overwrite)")
        args.work.mkdir(parents=True, exist_ok=True)
        return smoke(args.device, dtypes, args.work, args.limit)
    with tempfile.TemporaryDirectory(prefix="gpu_smoke-") as work:
        return smoke(args.device, dtypes, Path(work), args.limit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
