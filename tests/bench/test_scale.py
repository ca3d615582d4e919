"""``bench/scale.py`` at toy sizes: the synthetic log is real, the rows have their shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCALE = ROOT / "bench" / "scale.py"


@pytest.mark.slow
def test_log_and_journal_rows_and_the_log_passes_audit_verify(tmp_path: Path) -> None:
    """Two log sizes and one journal size give rows with restart, RSS, days and disk; the grown
    log exports and passes ``hotline audit verify``, so every signature in it is real."""
    cache = tmp_path / "cache"
    subprocess.run(
        [sys.executable, str(SCALE), "--endpoints", "", "--sizes", "2000,4000",
         "--journal-tests", "500", "--proofs", "5", "--idle", "0.2", "--cache", str(cache),
         "--out", str(tmp_path / "out")],
        check=True, timeout=300, capture_output=True, cwd=ROOT,
    )
    results = json.loads((tmp_path / "out" / "scale.json").read_text())
    sizes = results["log_sizes"]
    assert [row["asked_records"] for row in sizes] == [0, 2000, 4000]
    for row in sizes[1:]:
        assert row["records"] >= row["asked_records"]
        assert row["restart_s"] > 0
        assert row["peak_rss_mib"] > 0
        assert row["span_days"] > 0
        assert row["first_start_s"] > 0
    (journal,) = results["endpoint_journal"]
    assert journal["tests_answered"] == 500
    assert journal["outbox_rows"] == 0  # every answer accepted: pruned
    bundle = tmp_path / "bundle"
    net = cache / "net" / "network.toml"
    subprocess.run(
        [sys.executable, "-m", "hotline", "audit", "export", str(cache / "master"), "--out",
         str(bundle), "--network", str(net)],
        check=True, timeout=120, capture_output=True,
    )
    verified = subprocess.run(
        [sys.executable, "-m", "hotline", "audit", "verify", str(bundle)],
        check=True, timeout=120, capture_output=True, text=True,
    )
    assert verified.stdout.startswith("ok: ")
