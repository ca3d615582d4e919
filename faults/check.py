"""What the journals, the endpoints' APIs and the exported log say after the kills."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hotline.endpoint.journal import JOURNAL_FILE
from hotline.protocol.ids import format_id

MESSAGE_TYPES = ("warning", "update", "cancel", "text")


@dataclass
class Sent:
    id: str
    sender: str
    recipients: tuple[str, ...]
    accepted_index: int | None


@dataclass
class JournalView:
    outbox: dict[str, Sent] = field(default_factory=dict)  # every message any endpoint sent
    inbox: dict[str, Counter[str]] = field(default_factory=dict)  # recipient → id counts
    inconsistent_checkpoints: int = 0
    checkpoint_alarms: int = 0


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def read_journals(data_dirs: dict[str, Path]) -> JournalView:
    """Every endpoint's journal, read-only (the API lists stop at the newest 500)."""
    view = JournalView()
    marks = ",".join("?" * len(MESSAGE_TYPES))
    for party, data_dir in data_dirs.items():
        db = _connect(data_dir / JOURNAL_FILE)
        try:
            rows = db.execute(
                f"SELECT id, recipients, accepted_index FROM outbox WHERE t IN ({marks})",  # noqa: S608
                MESSAGE_TYPES,
            ).fetchall()
            for raw, recipients, index in rows:
                message_id = format_id(raw)
                to = tuple(json.loads(recipients)) if recipients else ()
                view.outbox[message_id] = Sent(message_id, party, to, index)
            view.inbox[party] = Counter(format_id(r[0]) for r in db.execute("SELECT id FROM inbox"))
            view.inconsistent_checkpoints += db.execute(
                "SELECT count(*) FROM checkpoints WHERE consistent = 0").fetchone()[0]
            view.checkpoint_alarms += db.execute(
                "SELECT count(*) FROM events WHERE name IN "
                "('checkpoint_inconsistent', 'checkpoint_refused')").fetchone()[0]
        finally:
            db.close()
    return view


def missing(view: JournalView) -> tuple[list[str], list[tuple[str, str]]]:
    """Messages not yet accepted, and (id, recipient) pairs not yet in an inbox."""
    unaccepted = [m.id for m in view.outbox.values() if m.accepted_index is None]
    undelivered = [
        (m.id, to) for m in view.outbox.values() for to in m.recipients
        if m.id not in view.inbox.get(to, Counter())
    ]
    return unaccepted, undelivered


@dataclass
class LogView:
    verify_ok: bool
    verify_output: str
    message_counts: Counter[str]  # message id → how many message entries carry it
    index_of: dict[str, int]  # message id → its (first) log index
    duplicate_envelopes: int  # receipts and link tests logged twice under one id
    size: int


def _hotline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "hotline", *args],
        capture_output=True, text=True, check=False, timeout=300,
    )


def read_log(relay_dir: Path, network_dir: Path, bundle: Path) -> LogView:
    """Export the stopped relay's log, verify the bundle, and replay its entries."""
    done = _hotline("audit", "export", str(relay_dir), "--out", str(bundle),
                    "--network", str(network_dir))
    if done.returncode != 0:
        raise RuntimeError(f"audit export failed: {done.stderr or done.stdout}")
    verify = _hotline("audit", "verify", str(bundle))
    replay = _hotline("audit", "replay", str(bundle), "--format", "jsonl")
    if replay.returncode != 0:
        raise RuntimeError(f"audit replay failed: {replay.stderr or replay.stdout}")
    counts: Counter[str] = Counter()
    envelopes: Counter[str] = Counter()
    index_of: dict[str, int] = {}
    size = 0
    for line in replay.stdout.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        size += 1
        kind, message_id = row.get("kind"), str(row.get("id") or "")
        if kind in MESSAGE_TYPES and message_id:
            counts[message_id] += 1
            index_of.setdefault(message_id, int(row["index"]))
        elif kind in ("receipt", "test") and message_id:
            envelopes[message_id] += 1
    return LogView(
        verify.returncode == 0, (verify.stdout + verify.stderr).strip(), counts, index_of,
        sum(n - 1 for n in envelopes.values() if n > 1), size,
    )
