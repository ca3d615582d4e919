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
from hotline.protocol.lifecycle import settles
from hotline.protocol.vocab import Stage

MESSAGE_TYPES = ("warning", "update", "cancel", "text")
# the receipt stages after which delivery is no longer owed (docs/protocol.md §3.11)
_DELIVERY_REACHED = tuple(s.value for s in Stage if Stage.DELIVERED in settles(s))


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
    messages: dict[str, LoggedMessage] = field(default_factory=dict)  # id → its first entry
    reached_ms: dict[tuple[str, str], int] = field(default_factory=dict)  # (id, recipient) →
    # relay time of the first delivered, acknowledged or rejected receipt: delivery reached
    overdue: set[tuple[str, str, str]] = field(default_factory=set)  # (id, recipient, stage)


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    relay_ts: int
    sender: str
    recipients: tuple[str, ...]
    precedence: str


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
    messages: dict[str, LoggedMessage] = {}
    reached_ms: dict[tuple[str, str], int] = {}
    overdue: set[tuple[str, str, str]] = set()
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
            messages.setdefault(message_id, LoggedMessage(
                int(row["relay_ts"]), str(row["from"]), tuple(row["to"]), str(row["precedence"])))
        elif kind in ("receipt", "test") and message_id:
            envelopes[message_id] += 1
            if kind == "receipt" and row.get("stage") in _DELIVERY_REACHED:
                reached_ms.setdefault((str(row["ref"]), str(row["from"])), int(row["relay_ts"]))
        elif kind == "overdue" and row.get("to"):
            overdue.add((str(row["ref"]), str(row["to"][0]), str(row.get("stage"))))
    return LogView(
        verify.returncode == 0, (verify.stdout + verify.stderr).strip(), counts, index_of,
        sum(n - 1 for n in envelopes.values() if n > 1), size,
        messages=messages, reached_ms=reached_ms, overdue=overdue,
    )


@dataclass(frozen=True, slots=True)
class Arrival:
    """A message in a recipient's inbox, in the order it was journaled there."""

    recipient: str
    sender: str
    precedence: str
    seq: int
    id: str


def read_arrivals(data_dirs: dict[str, Path]) -> list[Arrival]:
    """Every inbox row of every endpoint, each inbox in insertion order."""
    arrivals: list[Arrival] = []
    for party, data_dir in data_dirs.items():
        db = _connect(data_dir / JOURNAL_FILE)
        try:
            rows = db.execute(
                "SELECT sender, precedence, json_extract(body_json, '$.seq'), id FROM inbox "
                "ORDER BY rowid").fetchall()
        finally:
            db.close()
        arrivals += [Arrival(party, s, p, int(q), format_id(i)) for s, p, q, i in rows]
    return arrivals


@dataclass(frozen=True, slots=True)
class SenderDeadline:
    """One (message, recipient) as its sender saw it: the clock starts at ``accepted_ms``."""

    id: str
    sender: str
    recipient: str
    precedence: str
    accepted_ms: int
    reached_ms: int | None  # the first delivered, acknowledged or rejected receipt we got
    overdue: bool  # the sender reported the ``delivered`` stage overdue


def read_sender_deadlines(data_dirs: dict[str, Path]) -> list[SenderDeadline]:
    """The ``delivered`` deadline of every accepted message, from its sender's journal."""
    marks = ",".join("?" * len(MESSAGE_TYPES))
    out: list[SenderDeadline] = []
    for party, data_dir in data_dirs.items():
        db = _connect(data_dir / JOURNAL_FILE)
        try:
            reached = {
                (ref, who): ms for ref, who, ms in db.execute(
                    "SELECT ref, party, min(received_ms) FROM stages WHERE stage IN "
                    "('delivered', 'acknowledged', 'rejected') GROUP BY ref, party")
            }
            overdue = set(db.execute(
                "SELECT ref, party FROM overdue WHERE stage = 'delivered' AND role = 'sender'"
            ).fetchall())
            rows = db.execute(
                "SELECT id, recipients, precedence, accepted_received_ms FROM outbox "  # noqa: S608
                f"WHERE t IN ({marks}) AND accepted_received_ms IS NOT NULL",
                MESSAGE_TYPES,
            ).fetchall()
        finally:
            db.close()
        for raw, recipients, precedence, accepted_ms in rows:
            for to in json.loads(recipients or "[]"):
                out.append(SenderDeadline(
                    format_id(raw), party, to, precedence, accepted_ms,
                    reached.get((raw, to)), (raw, to) in overdue,
                ))
    return out


def read_connections(data_dirs: dict[str, Path]) -> dict[str, list[tuple[int, str]]]:
    """Each endpoint's ``relay_connected`` and ``relay_disconnected`` events: (at_ms, name)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for party, data_dir in data_dirs.items():
        db = _connect(data_dir / JOURNAL_FILE)
        try:
            out[party] = [(int(at), str(name)) for at, name in db.execute(
                "SELECT at_ms, name FROM events WHERE name IN "
                "('relay_connected', 'relay_disconnected') ORDER BY number")]
        finally:
            db.close()
    return out


@dataclass(frozen=True, slots=True)
class Losses:
    """Messages answered 202 that did not make it all the way, by where they stopped."""

    unjournaled: list[str]  # 202 but not in the sender's journal
    unaccepted: list[str]  # never accepted
    not_logged: list[str]  # accepted, but not in the log at the receipt's index
    undelivered: list[tuple[str, str]]  # (id, recipient) not in the recipient's inbox

    @property
    def ids(self) -> set[str]:
        return {*self.unjournaled, *self.unaccepted, *self.not_logged,
                *(i for i, _ in self.undelivered)}

    def explained(self) -> list[str]:
        """One sentence per kind of loss that happened."""
        kinds = (("202 but not in the sender's journal", self.unjournaled),
                 ("never accepted", self.unaccepted),
                 ("accepted, not in the log", self.not_logged),
                 ("not in a recipient's inbox", self.undelivered))
        return [f"LOST ({what}): {len(items)}, e.g. {list(items)[:3]}"
                for what, items in kinds if items]


def account(sent: set[str], view: JournalView, log: LogView) -> Losses:
    """Follow every message answered 202 (``sent``) through journals and the log."""
    unaccepted, undelivered = missing(view)
    accepted = [m for m in view.outbox.values() if m.accepted_index is not None]
    return Losses(
        sorted(sent - set(view.outbox)), unaccepted,
        sorted(m.id for m in accepted if log.index_of.get(m.id) != m.accepted_index),
        undelivered,
    )


def duplicates(view: JournalView, log: LogView) -> int:
    """Ids held twice: in an inbox, among the log's messages, or receipts logged twice."""
    return (
        sum(n - 1 for counts in view.inbox.values() for n in counts.values() if n > 1)
        + sum(n - 1 for n in log.message_counts.values() if n > 1)
        + log.duplicate_envelopes
    )
