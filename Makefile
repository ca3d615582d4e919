# The two set-up commands are `make demo` (the main job) and `make test` (the whole suite).
# Both bootstrap .venv on first use with nothing but Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo-data
PORT   ?= 8700
# Leave DURATION empty to run until Ctrl-C; DURATION=25 compresses the scenario into 25 s.
DURATION ?=

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hotline demo --data $(DEMO) --base-port $(PORT) $(if $(DURATION),--duration $(DURATION))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
