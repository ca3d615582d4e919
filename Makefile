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

.PHONY: demo test lint clean bench bench-scale faults

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

# `make bench`: hotline beside NATS JetStream and Mosquitto (Debian's servers are installed if
# missing), a py-spy profile of the relay, then the scale curves; about 7 minutes on 2 cores.
# Results in bench/results/ (not committed); the chart in docs/bench-peers.svg.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/compare.py --install --profile
	$(BIN)/python bench/scale.py

# The scale curves alone: endpoints connected, relay restart and proofs as the log grows.
bench-scale: $(BENCH_STAMP)
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache

# `make faults`: SIGKILL the relay 50 times and endpoints 10 times under load on loopback, then
# count lost and duplicated messages and verify the log; about 2 minutes on 2 cores. SEED=N repeats a run.
FAULTS_ARGS ?= --relay-kills 50 --endpoint-kills 10 $(if $(SEED),--seed $(SEED))

faults: $(STAMP)
	$(BIN)/python -m faults.run $(FAULTS_ARGS)
