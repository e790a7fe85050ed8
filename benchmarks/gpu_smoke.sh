#!/usr/bin/env bash
# GPU smoke test: fairpriv's fitting and evaluation paths on a real device, in one short run (a few minutes).
#
# What it does: builds a tiny random Llama (hidden 64, 2 layers, a byte-level BPE tokenizer trained on the spot;
# nothing is downloaded), then for each dtype (bfloat16 and float32) fits DEAN, SFT LoRA and DP LoRA (Opacus hooks
# and book-keeping) with `fairpriv fit NAME --model_args pretrained=DIR,dtype=D,device=DEV,<small config> --out ...`
# and evaluates the plain model and every artifact with lm-eval (`<name>-hf`, device=DEV,dtype=D, the packaged
# fairpriv_sanity task, --limit 4), checking that the weights sit on the device in the dtype asked for, that the
# fitted artifact is the one applied, and the facts a working fit records (DEAN zeroes some weights, DP's epsilon
# is within budget). Each step prints `PASS step dtype seconds (note)` or `FAIL step dtype: reason`, then a SUMMARY
# line; the exit status is non-zero when any step failed. Every step runs in its own process with fresh caches.
#
# Needs: a CUDA machine with torch (a CUDA build), transformers, peft and accelerate installed, and fairpriv with
# lm_eval, opacus and its other dependencies, either installed already or from a wheelhouse folder:
#
#     bash benchmarks/gpu_smoke.sh                                  # fairpriv already installed in `python3`
#     WHEELS=/path/to/wheelhouse bash benchmarks/gpu_smoke.sh       # pip install --no-index fairpriv from there first
#     DEVICE=cpu DTYPES=float32 bash benchmarks/gpu_smoke.sh         # check the script itself without a GPU
#
# Settings (environment): DEVICE (default cuda), DTYPES (default "bfloat16 float32"), PYTHON (default python3),
# WORK (keep the model and artifacts in this new folder; default a temporary one), LIMIT (items per evaluation,
# default 4), STEP_TIMEOUT (seconds per step, default 300).
#
# Record the output: run it as `bash benchmarks/gpu_smoke.sh 2>&1 | tee gpu_smoke-$(date +%F).log`; the first line
# names the GPU and the torch, CUDA, fairpriv, transformers, peft, opacus and lm_eval versions, so the log stands on
# its own. Paste it into the issue or pull request that the check was run for.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

if [ -n "${WHEELS:-}" ]; then
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" fairpriv
fi
NEEDS="fairpriv lm_eval opacus peft accelerate transformers torch"
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" \
        $NEEDS 2>/dev/null; then
    echo "FAIL setup: $PYTHON cannot find all of $NEEDS; install fairpriv (pip install . in a" \
         "checkout) or give its wheelhouse: WHEELS=/path/to/wheels bash $0" >&2
    exit 1
fi

args=(--device "${DEVICE:-cuda}" --dtypes "${DTYPES:-bfloat16 float32}" --limit "${LIMIT:-4}")
if [ -n "${WORK:-}" ]; then
    args+=(--work "$WORK")
fi
exec "$PYTHON" "$HERE/gpu_smoke.py" "${args[@]}"
