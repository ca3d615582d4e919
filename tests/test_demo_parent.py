"""``kill -INT`` on ``make demo``: make alone gets it and waits; the demo must notice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.demo.parent import parent_interrupted

CHILD = """
import sys, time
from hotline.demo.parent import parent_interrupted
print("started", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    if parent_interrupted():
        print("seen", flush=True)
        sys.exit(0)
    time.sleep(0.05)
print("never seen", flush=True)
sys.exit(1)
"""


# make as a terminal starts it: SIGINT not ignored, even when this test runs in the background
START_MAKE = ("import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execvp('make', ['make', '-s', 'x'])")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_a_child_of_make_sees_make_interrupted(tmp_path: Path) -> None:
    """SIGINT to make's pid only: make blocks it and waits; its child sees that and can stop,
    so make exits instead of waiting forever."""
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    (tmp_path / "Makefile").write_text(f"x:\n\texec {sys.executable} child.py\n",
                                       encoding="utf-8")
    with subprocess.Popen([sys.executable, "-c", START_MAKE], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())}) as make:
        assert make.stdout is not None
        assert make.stdout.readline() == b"started\n"
        os.kill(make.pid, signal.SIGINT)
        make.wait(timeout=30)
        assert make.stdout.read() == b"seen\n"


def test_not_a_child_of_make_is_never_interrupted() -> None:
    """Under pytest (not make) the parent is never taken for an interrupted make."""
    assert parent_interrupted() is False
