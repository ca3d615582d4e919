"""Whether the process that started us is GNU make, interrupted and waiting for us.

``kill -INT`` on ``make demo`` reaches make alone: make does not pass SIGINT on
(it expects the terminal to have sent it to the whole process group), it blocks
the signal while its handler waits for its children, and so waits for a demo
that never heard anything. Linux shows a process's blocked signals in
``/proc/PID/status`` (``SigBlk``); the demo reads its parent's and stops as if
it had been interrupted itself. Anywhere else this finds nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Final

__all__ = ["parent_interrupted"]

_MAKES: Final = frozenset({"make", "gmake"})
_WATCHED: Final = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _blocked(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return 0


def parent_interrupted(proc: Path = Path("/proc")) -> bool:
    """True when our parent is make inside its handler for SIGINT, SIGHUP or SIGQUIT."""
    parent = proc / str(os.getppid())
    try:
        name = (parent / "comm").read_text(encoding="utf-8").strip()
        if name not in _MAKES:
            return False
        blocked = _blocked((parent / "status").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(blocked & (1 << (int(sig) - 1)) for sig in _WATCHED)
