"""``hotline demo`` end to end: real processes, a compressed scenario, a log that verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.demo.scenario import builtin_scenario, scaled
from hotline.testing.ports import free_port_run


def _hotline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_scaling_keeps_every_step_in_order() -> None:
    """A compressed scenario keeps its steps' order and fits the duration."""
    scenario = builtin_scenario()
    short = scaled(scenario, 10)
    assert [s.do for s in short.steps] == [s.do for s in scenario.steps]
    assert max(s.at for s in short.steps) <= 10
    assert {"warn", "update", "cancel", "text", "offline", "online"} <= {
        s.do for s in scenario.steps
    }


@pytest.mark.slow
def test_a_short_demo_runs_every_stage_and_leaves_a_log_that_verifies(tmp_path: Path) -> None:
    """The demo exits 0 after serving the relay's pages; its log exports, verifies and reports."""
    base = free_port_run(6)
    demo = _hotline("demo", "--data", str(tmp_path / "d"), "--base-port", str(base),
                    "--duration", "20")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for path in ("/healthz", "/v1/links", "/metrics", "/checkpoint"):
        assert f"relay {path}: 200" in demo.stdout
    assert _hotline("audit", "export", str(tmp_path / "d" / "relay"), "--out",
                    str(tmp_path / "b")).returncode == 0
    verify = _hotline("audit", "verify", str(tmp_path / "b"))
    assert verify.returncode == 0, verify.stderr
    report = _hotline("audit", "report", str(tmp_path / "b"), "--format", "json")
    figures = json.loads(report.stdout)
    links = {(link["from"], link["to"]): link for link in figures["links"]}
    for recipient in ("LT", "PL"):
        link = links[("BY", recipient)]
        assert link["delivered"] >= 3
        assert link["acknowledged"] >= 3
        assert link["delivery_ms"]["p99"] is not None
    caught_up = links[("BY", "LV")]
    assert caught_up["delivered"] == 1
    assert caught_up["delivery_ms"]["max"] > 1000  # LV was offline and caught up
    counts = links[("BY", "LT")]["counts"]
    assert counts["update"]["exercise"] == 1
    assert counts["cancel"]["exercise"] == 1
