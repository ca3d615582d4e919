# The two set-up commands are `make demo` (the main job) and `make test` (the whole suite).
# Both bootstrap .venv on first use with nothing but Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo-data

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@test -f $(DEMO)/network.toml || $(BIN)/hotline init $(DEMO)
	$(BIN)/hotline envelope sign --network $(DEMO) --as BY config/examples/warning.json --out $(DEMO)/warning.env
	$(BIN)/hotline envelope verify --network $(DEMO) $(DEMO)/warning.env

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
