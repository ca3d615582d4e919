"""bench/compare.py, run for a handful of messages: the rows it writes and how it sums them up."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "bench" / "compare.py"
ROW_KEYS = {"system", "mode", "msgs_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_msg",
            "client_cpu_us_per_msg", "round"}
MODES = {"reqack-w1", "reqack-w100"}


def _installed(name: str) -> bool:
    return (shutil.which(name) or shutil.which(name, path="/usr/sbin")) is not None


def _systems() -> list[str]:
    """hotline, the floor and the ceiling always; the peers only where their servers (and nats-py)
    are."""
    systems = ["hotline", "floor"]
    if _installed("nats-server") and importlib.util.find_spec("nats") is not None:
        systems += ["nats", "nats-ed25519"]
    if _installed("mosquitto"):
        systems.append("mosquitto")
    return [*systems, "ceiling"]


def _run(tmp_path: Path, systems: list[str]) -> list[dict[str, object]]:
    subprocess.run(
        [sys.executable, str(COMPARE), "--systems", ",".join(systems), "--rounds", "1",
         "--seconds", "1", "--messages", "20", "--warmup", "5", "--out", str(tmp_path),
         "--chart", str(tmp_path / "chart.svg")],
        check=True, timeout=180, capture_output=True, cwd=ROOT,
    )
    rows: list[dict[str, object]] = json.loads((tmp_path / "latest.json").read_text())
    return rows


@pytest.mark.slow
def test_each_system_and_mode_gives_one_row_of_the_documented_shape(tmp_path: Path) -> None:
    """A row per system and mode, each with the documented keys, rates and latencies above 0."""
    systems = _systems()
    rows = _run(tmp_path, systems)
    expected = {(s, m) for s in systems for m in MODES if s != "ceiling"}
    assert {(r["system"], r["mode"]) for r in rows} == expected | {("ceiling", "reqack-w100")}
    for row in rows:
        assert row.keys() >= ROW_KEYS
        assert str(row["system"]).startswith(("hotline", "floor", "nats", "mosquitto", "ceiling"))
        if str(row["system"]).startswith(("hotline", "floor")):
            signatures = row["sig_us_per_msg"]
            assert isinstance(signatures, int | float)
            assert signatures > 0
        else:
            assert "sig_us_per_msg" not in row
        assert row["round"] == 0
        for key in ("msgs_per_s", "p50_ms", "p99_ms"):
            value = row[key]
            assert isinstance(value, int | float)
            assert value > 0
        assert isinstance(row["server_cpu_us_per_msg"], int | float)
        assert row["server_cpu_us_per_msg"] >= 0
        assert float(str(row["p50_ms"])) <= float(str(row["p99_ms"]))
    table = (tmp_path / "latest.md").read_text()
    assert "| hotline | reqack-w1 |" in table
    assert "hotline / ceiling" in table
    assert "| reqack-w100 | hotline round trips/s / the signature ceiling | ≥ 0.6 |" in table
    assert "| reqack-w100 | hotline relay CPU per round trip / floor relay CPU |" in table
    assert "| reqack-w1 | hotline p50 / floor p50 |" in table
    if "nats-ed25519" in systems:
        assert "| reqack-w1 | hotline p50 / nats-ed25519 p50 | ≤ 2 |" in table
    chart = (tmp_path / "chart.svg").read_text()
    assert chart.startswith("<svg")
    for system in systems:
        assert f">{system}</text>" in chart
