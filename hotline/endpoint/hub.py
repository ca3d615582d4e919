"""Fan-out of endpoint events to live listeners (the console's event stream, tests).

Each subscriber has its own bounded queue; one that falls too far behind is
dropped (its stream ends) rather than slowing the endpoint down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

from hotline.endpoint.events import EndpointEvent

__all__ = ["EventHub", "Subscription"]

_QUEUE_SIZE: Final = 10_000


class Subscription:
    """An async iterator of the events published after it was opened."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[EndpointEvent | None] = asyncio.Queue(_QUEUE_SIZE)
        self.dropped = False

    def _offer(self, event: EndpointEvent | None) -> bool:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            return False
        return True

    async def next(self) -> EndpointEvent | None:
        """The next event, or None once the subscription has ended."""
        if self.dropped and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[EndpointEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[EndpointEvent]:
        while True:
            event = await self.next()
            if event is None:
                return
            yield event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventHub:
    """Publishes each event to every open subscription."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: EndpointEvent) -> None:
        for subscription in list(self._subscribers):
            if not subscription._offer(event):
                self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every subscription (their iterators stop)."""
        for subscription in list(self._subscribers):
            subscription.dropped = True
            subscription._offer(None)
        self._subscribers.clear()
