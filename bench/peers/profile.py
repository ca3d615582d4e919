"""Where the relay's CPU goes: py-spy samples of the running relay, folded into tables.

``py-spy record --format raw`` writes one line per distinct stack, frames
joined by ``;`` from the outermost in, then the number of samples. Only
samples of threads that were running are kept (py-spy's default), so shares
are shares of the relay's CPU time. Time spent inside a C extension (libsodium,
msgpack, the JSON encoder) is charged to the Python function that called it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Profile", "py_spy", "read_folded", "start_recording"]

_FRAME: Final = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_LIBRARY: Final = re.compile(r"(?:site-packages|/lib/python3\.\d+)/")

# Where the relay's own work starts again inside the log's machinery: a durable append is
# handed back to the relay through these callbacks, and what runs under them (signing the
# accepted receipt, forwarding, logging) is the relay's, not the append's.
HANDED_BACK: Final = ("Relay.logged (hotline.relay.server)",)

# What a sample was doing: the first of these whose marker is in any frame of its stack
# (from the innermost HANDED_BACK frame in, if there is one).
PARTS: Final = (
    ("Ed25519 verification (libsodium)", ("PublicKey.verify",)),
    ("Ed25519 signing (accepted receipts, checkpoints)", ("SigningKey.sign",)),
    ("structured logging (structlog, JSON, stderr)", ("(structlog.", "(hotline.logs)")),
    ("checkpoints (tree root, note file)", ("AuditLog.checkpoint", "_maybe_checkpoint")),
    ("durable append (write, fsync, group commit)",
     ("(hotline.auditlog.filestore)", "(hotline.auditlog.groupcommit)",
      "(hotline.auditlog.diskio)", "AuditLog.append")),
    ("envelope decoding and encoding (schema, msgpack)",
     ("(hotline.protocol.schema)", "(msgpack.", "(hotline.protocol.session)")),
    ("deadlines, retries and link tests (the 100 ms tick)", ("RelayCore.tick",)),
    ("dedup index and state snapshots",
     ("(hotline.relay.idindex)", "(hotline.relay.idmaps)", "(hotline.relay.snapshot)")),
    ("per-link figures", ("(hotline.figures.",)),
    ("relay logic (core, admission, edge)",
     ("(hotline.relay.", "(hotline.protocol.")),
    ("event loop, threads and WebSocket I/O", ("",)),
)


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, seconds: float, out: Path, rate: int = 250
) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` for ``seconds`` (without pausing it) into ``out``."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    return subprocess.Popen(
        [executable, "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _place(frame: str) -> tuple[str, str]:
    """(function, module) of one frame; the module is a dotted path or a file name."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), "?"
    path = match["file"]
    library = _LIBRARY.search(path)
    if library is not None:
        path = path[library.end():]
    elif "/hotline/" in path:  # hotline's own code, wherever the clone is
        path = path[path.rindex("/hotline/") + 1:]
    module = path.removesuffix(".py").replace("/", ".")
    return f"{match['func']} ({module})", module


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    self_time: Counter[str]
    inclusive: Counter[str]
    by_package: Counter[str]
    by_part: Counter[str]

    def table(self, top: int = 25) -> str:
        lines = [f"{self.samples} samples of the relay while it was on CPU", ""]
        own = Counter({name: count for name, count in self.inclusive.items()
                       if "(hotline." in name})
        for title, counts in (("what the relay was doing", self.by_part),
                              ("self (where the CPU was)", self.self_time),
                              ("inclusive, hotline's functions (under this call)", own),
                              ("self, by package", self.by_package)):
            lines += [f"| {title} | share |", "| --- | ---: |"]
            for name, count in counts.most_common(top):
                lines.append(f"| `{name}` | {count / self.samples:.1%} |")
            lines.append("")
        return "\n".join(lines)


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "hotline" and len(parts) > 1:
        return ".".join(parts[:3]) if parts[1] in {"relay", "protocol", "auditlog"} else \
            ".".join(parts[:2])
    return parts[0]


def read_folded(path: Path) -> Profile:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    by_part: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_place(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        name, module = frames[-1]
        self_time[name] += count
        by_package[_package(module)] += count
        names = {f[0] for f in frames}
        for seen in names:
            inclusive[seen] += count
        by_part[_part(_relay_work(frames))] += count
    return Profile(total, self_time, inclusive, by_package, by_part)


def _relay_work(frames: list[tuple[str, str]]) -> set[str]:
    """The frames that say what a sample was doing: from the innermost hand-back in."""
    start = max((i for i, (name, _) in enumerate(frames) if name in HANDED_BACK), default=0)
    return {name for name, _ in frames[start:]}


def _part(names: set[str]) -> str:
    for part, markers in PARTS:
        if any(marker in name for marker in markers for name in names):
            return part
    return PARTS[-1][0]
