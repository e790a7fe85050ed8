"""``benchmarks/gpu_smoke.sh``, the prepared check for GPU machines, run here on the CPU: every fit and evaluation
passes, and a machine it cannot use is refused at once with the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_smoke.sh"
STEPS = ["build:tiny-llama", "eval:base"] + [f"{kind}:{variant}" for variant in
                                             ("dean", "sft-lora", "dp-lora-hooks", "dp-lora-bookkeeping")
                                             for kind in ("fit", "eval")]


def smoke(tmp_path: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT)], env=environ, capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path)


@pytest.mark.slow
def test_every_step_passes_on_the_cpu_in_float32(tmp_path, fixture_plugin):
    done = smoke(tmp_path, 1800, DEVICE="cpu", DTYPES="float32", WORK=str(tmp_path / "work"))
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert lines[0].startswith("gpu_smoke on cpu: cpu; torch ")
    steps = [line for line in lines if line.startswith(("PASS ", "FAIL "))]  # (libraries may print lines too)
    passed = [re.fullmatch(r"PASS (\S+) float32 (\d+\.\d)s(?: \((.*)\))?", line) for line in steps]
    assert all(passed), steps
    assert [m[1] for m in passed] == STEPS
    notes = {m[1]: m[3] for m in passed}
    evals = [step for step in STEPS if step.startswith("eval:")]
    assert all(notes[step].endswith("on 4 items, weights float32 on cpu") for step in evals)
    assert re.fullmatch(r"zeroed \d+ of 49152", notes["fit:dean"])  # 2 layers x 3 MLP matrices of 64 x 128
    assert notes["fit:dp-lora-hooks"].endswith(", hooks") and notes["fit:dp-lora-bookkeeping"].endswith(
        ", bookkeeping")
    assert re.fullmatch(r"SUMMARY 10 passed, 0 failed in \d+ s on cpu \(float32\)", lines[-1])
    assert sorted(p.name for p in (tmp_path / "work" / "float32").iterdir()) == sorted(s[4:] for s in STEPS
                                                                                     if s.startswith("fit:"))


def test_a_python_without_fairpriv_is_refused_with_the_fix(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    done = smoke(tmp_path, 60, PYTHON=str(python))
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.startswith(f"FAIL setup: {python} cannot find all of fairpriv lm_eval opacus peft "
                                  "accelerate transformers torch;")
    assert "WHEELS=/path/to/wheels bash" in done.stderr


def test_cuda_without_a_gpu_fails_before_any_step(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = smoke(tmp_path, 300, DEVICE="cuda")
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL setup cuda: torch ")
    assert "sees no CUDA device; run with DEVICE=cpu" in done.stdout
    assert "PASS" not in done.stdout


def test_a_work_folder_in_use_is_refused(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "old").write_text("")
    done = smoke(tmp_path, 300, DEVICE="cpu", WORK=str(tmp_path / "work"))
    assert done.returncode == 2 and "is not empty; give a new folder" in done.stderr
