"""A relay replica's bounded waits end when cancelled (no NATS needed: nothing connects)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.auditlog.log import AuditLog
from hotline.auditlog.streamconfig import StreamSettings
from hotline.relay.replica import Replica
from tests.factories import seeded_key

TIMEOUT = 5.0


async def test_a_cancel_in_the_turn_the_condition_holds_still_ends_wait_applied_until(
    tmp_path: Path,
) -> None:
    """Cancelled as the batch it waits for is applied, the wait ends cancelled, not True.

    (``asyncio.wait_for`` on Python 3.11 trades such a cancel for the result, CPython
    gh-86296: a stop that cancels a task waiting here must not be ignored.)
    """
    audit_log = AuditLog.open_directory(tmp_path, origin="test.example/log",
                                        key=seeded_key("relay"))
    try:
        replica = Replica(audit_log, None, StreamSettings(("nats://127.0.0.1:9",)))  # type: ignore[arg-type]
        reached = False
        waiting = asyncio.create_task(replica.wait_applied_until(lambda: reached, TIMEOUT))
        for _ in range(5):  # a few turns of the loop (no timed wait): the wait is under way
            await asyncio.sleep(0)
        assert not waiting.done()
        reached = True
        async with replica._applied:  # what the applier does after each batch
            replica._applied.notify_all()
        waiting.cancel()
        await asyncio.wait({waiting}, timeout=TIMEOUT)
        assert waiting.done(), "the wait went on after it was cancelled"
        assert waiting.cancelled(), f"the wait returned {waiting.result()!r} instead of stopping"
    finally:
        await audit_log.close()
        audit_log.store.close()
