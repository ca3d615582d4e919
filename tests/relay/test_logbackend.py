"""The relay's own file store as its log backend: results in order, and close() waits for
everything asked for, including appends asked for while a result is handed back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.auditlog.leaf import EntryKind, LogEvent, encode_event_entry
from hotline.auditlog.log import AuditLog
from hotline.relay.core import Append
from hotline.relay.logbackend import EmbeddedLog
from tests.factories import seeded_key

TIMEOUT = 10.0


def _entry(n: int) -> Append:
    event = LogEvent(EntryKind.CONNECTED, {"party": "LT"})
    return Append(encode_event_entry(1_764_000_000_000 + n, event), n, event=event)


class ChainSink:
    """Like the relay: completing one append (a message logged) may ask for another (the
    redelivered event of a message whose retry came due)."""

    def __init__(self, chain: int) -> None:
        self.chain = chain
        self.backend: EmbeddedLog | None = None
        self.logged_at: list[tuple[int, int]] = []

    def logged(self, append: Append, index: int) -> None:
        self.logged_at.append((append.token, index))
        if append.token < self.chain:
            assert self.backend is not None
            self.backend.append(_entry(append.token + 1))


async def test_close_waits_for_appends_asked_for_while_completing(tmp_path: Path) -> None:
    """close() returns once every append asked for before it returns is durable and handed
    back, those asked for by a completion included, each at the next index in turn."""
    audit_log = AuditLog.open_directory(tmp_path, origin="test.example/log",
                                        key=seeded_key("relay"))
    sink = ChainSink(chain=3)
    backend = EmbeddedLog(audit_log, sink)  # type: ignore[arg-type]
    sink.backend = backend
    await backend.open()
    backend.append(_entry(0))
    await asyncio.wait_for(backend.close(), TIMEOUT)
    assert sink.logged_at == [(0, 0), (1, 1), (2, 2), (3, 3)]
    await audit_log.close()
    audit_log.store.close()
