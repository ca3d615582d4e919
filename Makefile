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
# OFFICERS=off|scenario|all: which messages the simulated duty officers acknowledge.
OFFICERS ?=

.PHONY: demo test lint clean bench bench-scale faults hostile-relay multipath cluster-demo failover \
	nats-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# exec: the demo replaces the recipe's shell, so Ctrl-C and `kill -INT` reach it (a SIGINT sent
# to make alone is seen by the demo too: hotline/demo/parent.py).
demo: $(STAMP)
	exec $(BIN)/hotline demo --data $(DEMO) --base-port $(PORT) $(if $(DURATION),--duration $(DURATION)) $(if $(OFFICERS),--officers $(OFFICERS))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# After the suite, the pure cores' line coverage from their own unit tests, against the floor
# in pyproject.toml ([tool.coverage.report] fail_under); a few seconds.
# Each pair is module=its unit tests (comma-separated).
CORE_COVERAGE := \
	hotline.relay.core=tests/relay/test_core.py \
	hotline.endpoint.core=tests/endpoint/test_core.py,tests/endpoint/test_core_refusals.py,tests/endpoint/test_lifecycle.py,tests/endpoint/test_witness.py,tests/endpoint/test_refusals.py,tests/endpoint/test_guard.py,tests/endpoint/test_core_paths.py \
	hotline.protocol=tests/protocol \
	hotline.auditlog.merkle=tests/auditlog/test_merkle.py

test: lint
	$(BIN)/pytest
	@for pair in $(CORE_COVERAGE); do \
		$(BIN)/python -m pytest -q $$(echo "$${pair#*=}" | tr , ' ') --cov="$${pair%%=*}" \
			--cov-report=term || exit 1; \
	done

# `make bench`: hotline beside NATS JetStream and Mosquitto (Debian's servers are installed if
# missing), the floor relay and the signature ceiling, a py-spy profile of the relay, then the
# scale curves; about 20 minutes on 2 cores the
# first time (the scale curves sign a 3,000,000-record log, then keep it in bench/results/).
# Results in bench/results/ (not committed); the chart in docs/bench-peers.svg.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/compare.py --install --profile
	$(BIN)/python bench/scale.py

# The scale curves alone: endpoints connected, relay restart and memory, proofs and an endpoint's
# journal as the log grows to 3,000,000 records (a month); about 15 minutes the first time, about
# 5 once the logs are cached in bench/results/scale-cache/.
bench-scale: $(BENCH_STAMP)
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) $(DEMO) $(CLUSTER_DEMO) .pytest_cache .mypy_cache .ruff_cache

# `make faults`: on loopback, under load, each phase on a fresh network: SIGKILL the relay 50 times
# and endpoints 10 times; then a fault proxy on every endpoint's link (delay, jitter, drop,
# half-open, a blackhole past the flash deadline); then hostile input (forgeries, replays, floods,
# slow clients, path tricks). Counts lost, duplicated, reordered and forged-but-accepted messages,
# checks overdue events and verifies every log; about 4 minutes on 2 cores. SEED=N repeats a run.
FAULTS_ARGS ?= --relay-kills 50 --endpoint-kills 10 $(if $(SEED),--seed $(SEED))

faults: $(STAMP)
	$(BIN)/python -m faults.run $(FAULTS_ARGS)

# `make hostile-relay`: a relay holding the real relay key cheats, one attack per fresh network
# of five endpoints on loopback (withholding, refusing, holding back, reordering, replaying,
# omitting from the log, split views, refused proofs, a frozen checkpoint, bad receipts logged),
# plus one run with no attack. Ends with `hostile-relay: attacks=N detected=D undetected=U
# false_alarms=F seconds=S`; about 5 minutes on 2 cores. ATTACK=name runs one attack.
hostile-relay: $(STAMP)
	$(BIN)/python -m faults.hostile_relay $(if $(ATTACK),--attack $(ATTACK))

# `make multipath`: two independent relays (by, osce) carry one network of five endpoints on
# loopback; under load relay by is SIGKILLed and restarted, then osce withholds a share of BY's
# messages while answering link tests. Ends with `multipath: relays=2 accepted=A shown_once=S
# lost=0 duplicates=0 withheld=W withheld_detected=W false_alarms=0`, after `hotline audit
# report` over both relays' bundles, and fails otherwise. DURATION (seconds of load, default
# 150) sets the length; about 4 minutes in all.
multipath: $(STAMP)
	$(BIN)/python -m faults.multipath $(if $(DURATION),--duration $(DURATION))

# High availability (docs/deploy.md): relay replicas on a three-node NATS JetStream cluster.
# Both targets install Debian's nats-server first if it is missing.
nats-server:
	@command -v nats-server >/dev/null 2>&1 || test -x /usr/sbin/nats-server || { \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends nats-server >/dev/null; }

# `make cluster-demo`: three nats-server nodes and two relay replicas on loopback, the five
# endpoints playing the demo scenario; prints which replica each endpoint uses. Starts afresh
# in cluster-demo-data/ each time; DURATION=25 compresses the scenario into 25 s and stops.
CLUSTER_DEMO ?= cluster-demo-data

cluster-demo: $(STAMP) nats-server
	$(BIN)/python -m hotline.cluster.demo --data $(CLUSTER_DEMO) --base-port $(PORT) \
		$(if $(DURATION),--duration $(DURATION))

# `make failover`: under load, SIGKILL a NATS node, then a relay replica, and restart them
# (ROUNDS times, default 2); then hang (SIGSTOP/SIGCONT) the stream's leader, a node a replica is
# connected to, relay replica r1, and two of the three nodes at once (a quorum loss). Ends with
# `failover: nats_kills=.. relay_kills=.. nats_freezes=.. relay_freezes=.. quorum_losses=..
# accepted=.. lost=0 duplicates=0 max_stall_s=S silent_stalls=0` and fails unless nothing was lost
# or duplicated, the log verifies, no stall was silent and max_stall_s <= 3. About 2 minutes.
FAILOVER_ARGS ?= --rounds $(or $(ROUNDS),2) $(if $(SEED),--seed $(SEED))

failover: $(STAMP) nats-server
	$(BIN)/python -m faults.failover $(FAILOVER_ARGS)
