# ifharness developer tasks. Everything runs inside .venv (created by `make install`).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install test test-fast lint bench demo clean

install: $(BIN)/activate
	$(PIP) install -e '.[dev]'
	# NLTK's own punkt_tab data, used only by tests/bench to prove our splits equal NLTK's
	# (this wheel ships NLTK's data folder; its dependencies are not needed for that).
	$(PIP) install --no-deps 'llama-index-core==0.14.25'

$(BIN)/activate:
	$(PY) -m venv $(VENV)

test:
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

lint:
	$(BIN)/ruff check ifharness verifiers tests bench

bench:
	$(BIN)/python bench/bench_scoring.py

demo:
	$(BIN)/ifharness score --task ifeval --data ../shared/data/ifeval/input_data.jsonl \
	  --responses ../shared/data/ifeval/gpt4_responses.jsonl --out results/demo-gpt4

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
