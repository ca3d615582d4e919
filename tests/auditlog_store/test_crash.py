"""Kill -9 a process appending through a GroupCommitter; every acknowledged entry survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.merkle import leaf_hash, root_of
from tests.auditlog_store.crash_child import entry_for

REPO: Path = Path(__file__).resolve().parents[2]
WORKERS = 16
KILL_AFTER = (1, 37, 400, 1500)
"""Acknowledged indexes to wait for before each kill, run after run on one directory."""
WATCHDOG_SECONDS = 30.0


def run_and_kill(directory: Path, kill_after: int, stderr_path: Path) -> list[int]:
    """Start the child, SIGKILL it once it acknowledged ``kill_after`` indexes; return them all."""
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.auditlog_store.crash_child",
                str(directory),
                str(WORKERS),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    watchdog = threading.Timer(WATCHDOG_SECONDS, child.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert child.stdout is not None
        while len(lines) < kill_after and (line := child.stdout.readline()).endswith("\n"):
            lines.append(line)
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=WATCHDOG_SECONDS)
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, stderr_path.read_text()
    assert len(lines) == kill_after, stderr_path.read_text()
    # A line cut by the kill (no newline) was never fully printed: not an acknowledgement.
    lines += [line for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    return [int(line) for line in lines]


def test_every_acknowledged_entry_survives_sigkill(tmp_path: Path) -> None:
    """After each kill -9, reopening holds every index the child printed, byte for byte."""
    directory = tmp_path / "log"
    acknowledged: set[int] = set()
    for run, kill_after in enumerate(KILL_AFTER):
        printed = run_and_kill(directory, kill_after, tmp_path / f"stderr-{run}.txt")
        assert len(set(printed)) == len(printed)
        assert acknowledged.isdisjoint(printed)
        acknowledged.update(printed)
        with FileStore(directory) as store:
            assert store.size > max(acknowledged)
            entries = store.read_range(0, store.size)
            assert entries == [entry_for(i) for i in range(store.size)]
            assert store.frontier().root() == root_of([leaf_hash(e) for e in entries])
            store.verify()
