"""Waiting on a running endpoint's event stream, bounded (tests never sleep to wait)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from hotline.endpoint.events import EndpointEvent
from hotline.endpoint.hub import Subscription

TIMEOUT: Final = 20.0


async def next_matching(
    subscription: Subscription, match: Callable[[EndpointEvent], bool], within_s: float = TIMEOUT
) -> EndpointEvent:
    """The first event published that matches, within ``within_s`` seconds."""
    async with asyncio.timeout(within_s):
        while True:
            event = await subscription.next()
            assert event is not None, "the event stream ended"
            if match(event):
                return event
