"""The tests' bare relay client (``tests/relay/client.py``): its waits end when cancelled."""

from __future__ import annotations

import asyncio

from hotline.protocol.session import Deliver
from tests.factories import TestNet
from tests.relay.client import RawClient

TIMEOUT = 5.0


async def test_a_cancel_in_the_turn_a_message_arrives_still_ends_next(net: TestNet) -> None:
    """Cancelled as its message arrives, ``next`` ends cancelled and leaves the message queued.

    A task that answers in a loop (link tests keep coming) stops only if a cancel is never
    traded for the message that arrived in the same turn of the event loop.
    """
    client = RawClient(net, "LT", "ws://127.0.0.1:9/v1/ws")  # never connected: inbox only
    try:
        waiting = asyncio.create_task(client.next(Deliver))
        for _ in range(5):  # a few turns of the loop (no timed wait): next() blocks on the inbox
            await asyncio.sleep(0)
        assert not waiting.done()
        client.inbox.put_nowait(Deliver(0, b"frame"))
        waiting.cancel()
        done, _ = await asyncio.wait({waiting}, timeout=TIMEOUT)
        assert waiting in done, "next() went on waiting after it was cancelled"
        assert waiting.cancelled(), f"next() returned {waiting.result()!r} instead of stopping"
        assert client.inbox.qsize() == 1
    finally:
        await client.session.close()
