"""``make cluster-demo`` end to end: three NATS nodes, two relay replicas, five endpoints."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.cluster.demo import REPLICA_OFFSET, ClusterDemo
from hotline.demo.scenario import builtin_scenario
from hotline.testing import ports
from hotline.testing.ports import free_port_run


def _log_tails(tmp_path: Path) -> str:
    """The last lines each of the demo's servers logged: why one of them stopped."""
    logs = sorted((tmp_path / "cluster-demo-data").glob("**/*.log"))
    return "".join(f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace")
                                                     .splitlines()[-8:]) for log in logs)


class _RunFirst:
    """A random source that offers every port of ``run`` before any other."""

    def __init__(self, run: range) -> None:
        self.offers = iter(run)

    def randrange(self, start: int, stop: int) -> int:
        return next(self.offers, None) or random.SystemRandom().randrange(start, stop)


def test_the_nats_nodes_never_take_a_port_of_the_demos_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's process draws the nodes' ports itself: the relays' and endpoints' are kept off."""
    base = free_port_run(REPLICA_OFFSET + 1)
    run = range(base, base + REPLICA_OFFSET + 1)
    monkeypatch.setattr(ports, "_given", set())  # the demo runs in a process of its own
    monkeypatch.setattr(ports, "_random", _RunFirst(run))
    demo = ClusterDemo(tmp_path, base, builtin_scenario())
    taken = {p for node in demo.nats.nodes for p in (node.port, node.cluster_port, node.http_port)}
    assert len(taken) == 9
    assert not taken & set(run)


@pytest.mark.slow
def test_the_cluster_demo_runs_from_a_relative_data_directory(tmp_path: Path) -> None:
    """As the Makefile runs it (a relative --data): every endpoint names its replica, exit 0."""
    base = free_port_run(REPLICA_OFFSET + 1)
    demo = subprocess.run(
        [sys.executable, "-m", "hotline.cluster.demo", "--data", "cluster-demo-data",
         "--base-port", str(base), "--duration", "12"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr[-3000:] + _log_tails(tmp_path)
    uses = dict(re.findall(r"^\s+(\w\w)\s+uses relay replica (r\d)", demo.stdout, re.MULTILINE))
    assert sorted(uses) == ["BY", "EE", "LT", "LV", "PL"]
    assert set(uses.values()) == {"r1", "r2"}, "the endpoints were not spread over both replicas"
    for path in ("/healthz", "/checkpoint"):
        assert f"relay {path}: 200" in demo.stdout
