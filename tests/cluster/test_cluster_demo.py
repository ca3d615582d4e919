"""``make cluster-demo`` end to end: three NATS nodes, two relay replicas, five endpoints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.cluster.demo import REPLICA_OFFSET
from hotline.testing.ports import free_port_run

pytestmark = pytest.mark.slow


def test_the_cluster_demo_runs_from_a_relative_data_directory(tmp_path: Path) -> None:
    """As the Makefile runs it (a relative --data): every endpoint names its replica, exit 0."""
    base = free_port_run(REPLICA_OFFSET + 1)
    demo = subprocess.run(
        [sys.executable, "-m", "hotline.cluster.demo", "--data", "cluster-demo-data",
         "--base-port", str(base), "--duration", "12"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr[-3000:]
    uses = dict(re.findall(r"^\s+(\w\w)\s+uses relay replica (r\d)", demo.stdout, re.MULTILINE))
    assert sorted(uses) == ["BY", "EE", "LT", "LV", "PL"]
    assert set(uses.values()) == {"r1", "r2"}, "the endpoints were not spread over both replicas"
    for path in ("/healthz", "/checkpoint"):
        assert f"relay {path}: 200" in demo.stdout
