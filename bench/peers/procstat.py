"""CPU time and peak memory of a process, read from ``/proc`` (Linux only).

``utime + stime`` in ``/proc/<pid>/stat`` covers every thread of the process
(the relay's fsync threads included), in clock ticks of ``SC_CLK_TCK``
(10 ms here); a run of a few seconds keeps the rounding under 1%.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid`` (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may itself hold spaces or ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS_PER_S


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"/proc/{pid}/status has no VmHWM line")


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds of some processes at one moment, so that a run can take a delta."""

    seconds: tuple[float, ...]

    @classmethod
    def of(cls, pids: tuple[int, ...]) -> CpuSnapshot:
        return cls(tuple(cpu_seconds(pid) for pid in pids))

    def since(self, earlier: CpuSnapshot) -> float:
        """CPU seconds all the processes used between ``earlier`` and this snapshot."""
        return sum(now - then for now, then in zip(self.seconds, earlier.seconds, strict=True))
