"""The feed service: who a feed is, and posting its message once per Idempotency-Key.

:class:`FeedRegistry` holds the feeds file (``feeds.toml``,
:mod:`hotline.endpoint.feedconfig`), read again when it changes; a bad change
is logged and the feeds before it stay. :class:`FeedService` authenticates a
feed by its bearer token, replays or refuses a reused Idempotency-Key, keeps
each feed to its rate (:mod:`hotline.endpoint.ratelimit`) and hands the draft
to the endpoint, noting the post in the journal's feed ledger
(:mod:`hotline.endpoint.feed_ledger`) before its message is signed and
completing it after. Feed posts run one at a time (one lock), so a retry
racing its original, or two reports of one track, are decided in order.

The HTTP side is :mod:`hotline.endpoint.feed_routes`.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog

from hotline.endpoint.correlation import TrackKey
from hotline.endpoint.errors import IdempotencyConflict, NotAuthenticated, RateLimited
from hotline.endpoint.feedconfig import FEEDS_FILE, Feed, FeedConfig, load_feeds
from hotline.endpoint.ratelimit import FeedLimits
from hotline.errors import ConfigError, Rejected
from hotline.network import Network
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.vocab import BodyType

if TYPE_CHECKING:
    from hotline.endpoint.service import Endpoint

__all__ = ["Draft", "FeedRegistry", "FeedService", "Planner", "Posted", "PostedMessage"]

log = structlog.get_logger("hotline.endpoint.feeds")

_ID_RANDOM_BYTES: Final = 10


class FeedRegistry:
    """The feeds file as last read; read again when it changes on disk."""

    def __init__(self, path: Path, network: Network, me: str) -> None:
        self.path = path
        self._network = network
        self._me = me
        self._stamp: tuple[int, int, int] | None = None
        self._config = FeedConfig()

    @classmethod
    def open(cls, path: Path | None, data_dir: Path, network: Network, me: str) -> FeedRegistry:
        """``path``, or ``DATA/feeds.toml`` when None (no feeds if that file is absent).

        Raises ConfigError for a given file that is missing, and for any file that
        does not validate.
        """
        registry = cls(path or data_dir / FEEDS_FILE, network, me)
        if path is not None and not path.is_file():
            raise ConfigError(f"the feeds file {path} does not exist")
        stamp = registry._stat()
        if stamp is not None:
            registry._config = load_feeds(registry.path, network=network, me=me)
            registry._stamp = stamp
            log.info("feeds_loaded", endpoint=me, path=str(registry.path),
                     feeds=[f.name for f in registry._config.feeds])
        return registry

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> FeedConfig:
        """The feeds now (the file is read again if it changed)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._config
        self._stamp = stamp
        if stamp is None:
            self._config = FeedConfig()
            log.warning("feeds_file_missing", endpoint=self._me, path=str(self.path))
            return self._config
        try:
            self._config = load_feeds(self.path, network=self._network, me=self._me)
        except ConfigError as exc:
            log.error("feeds_reload_failed",  # noqa: TRY400  (the sentence says it all) endpoint=self._me, path=str(self.path),
                      reason=exc.sentence, kept=[f.name for f in self._config.feeds])
        else:
            log.info("feeds_loaded", endpoint=self._me, path=str(self.path),
                     feeds=[f.name for f in self._config.feeds])
        return self._config


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to post for a feed: the JSON the endpoint composes, its type and incident."""

    data: dict[str, Any]
    kind: BodyType
    incident: bytes
    track: TrackKey | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    """The message a feed's post became; ``replayed`` when an Idempotency-Key answered."""

    id: bytes
    incident: bytes
    kind: BodyType
    replayed: bool

    def json(self) -> dict[str, str]:
        """The ``202`` answer's body: ``{"id", "incident", "t"}``."""
        return {"id": format_id(self.id), "incident": format_id(self.incident),
                "t": self.kind.value}


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """What an earlier post under an Idempotency-Key became, and the request it was."""

    id: bytes
    incident: bytes
    type: BodyType
    request_hash: bytes
    route: str


Planner = Callable[[int], Awaitable[Draft]]
"""Makes the draft at the time given, under the feed lock (journal lookups allowed)."""


class FeedService:
    """Authentication, rate limits, idempotency and correlation for one endpoint's feeds."""

    def __init__(self, endpoint: Endpoint, registry: FeedRegistry) -> None:
        self.endpoint = endpoint
        self.registry = registry
        self._limits = FeedLimits()
        self._lock = asyncio.Lock()
        self._unsettled = True  # settle what a crash may have left before the first post

    def authenticate(self, header: str | None) -> Feed:
        """The feed whose bearer token ``header`` carries. Raises NotAuthenticated."""
        if header is None:
            raise NotAuthenticated(
                "send the feed's token as Authorization: Bearer TOKEN", token_given=False
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(
                "the Authorization header must be Bearer followed by the feed's token",
                token_given=False,
            )
        feed = self.registry.current().authenticate(token)
        if feed is None:
            raise NotAuthenticated("the bearer token is not the token of a feed of this "
                                   "endpoint", token_given=True)
        return feed

    def new_id(self, now_ms: int) -> bytes:
        return make_id(now_ms, os.urandom(_ID_RANDOM_BYTES))

    async def settle(self) -> None:
        """Settle posts a crash or a cancelled request left half done: each gets the
        message it became, or is forgotten (:meth:`FeedLedger.reconcile
        <hotline.endpoint.feed_ledger.FeedLedger.reconcile>`)."""
        completed, dropped = await self.endpoint.journal.call(lambda j: j.feed_posts.reconcile())
        self._unsettled = False
        if completed or dropped:
            log.warning("feed_posts_settled", endpoint=self.endpoint.me, completed=completed,
                        dropped=dropped)

    async def _earlier(self, feed: str, key: str) -> PostedMessage | None:
        """The message a feed's earlier post under ``key`` became, if any."""
        journal = self.endpoint.journal
        earlier = await journal.call(lambda j: j.feed_posts.find(feed, key))
        if earlier is not None and earlier.message_id is None:
            await self.settle()  # cut short without a crash (a cancelled request): settle it
            earlier = await journal.call(lambda j: j.feed_posts.find(feed, key))
        if earlier is None or earlier.message_id is None:
            return None
        return PostedMessage(earlier.message_id, earlier.incident, earlier.type,
                             earlier.request_hash, earlier.route)

    async def submit(
        self,
        feed: Feed,
        *,
        route: str,
        key: str | None,
        request_hash: bytes,
        plan: Planner,
    ) -> Posted:
        """Post a feed's message once per Idempotency-Key (see the module docstring).

        Raises IdempotencyConflict, RateLimited, and Rejected from ``plan`` or
        from composing the message.
        """
        journal = self.endpoint.journal
        async with self._lock:
            if self._unsettled:
                await self.settle()
            if key is not None:
                earlier = await self._earlier(feed.name, key)
                if earlier is not None:
                    if earlier.request_hash != request_hash or earlier.route != route:
                        raise IdempotencyConflict(
                            f"feed {feed.name} used this Idempotency-Key for another request "
                            f"(message {format_id(earlier.id)}); use a new key"
                        )
                    return Posted(earlier.id, earlier.incident, earlier.type, replayed=True)
            now = self.endpoint.config.clock()
            draft = await plan(now)
            wait_ms = self._limits.take(feed.name, feed.rate_per_minute, now)
            if wait_ms:
                retry_s = max(1, math.ceil(wait_ms / 1000))
                raise RateLimited(
                    f"feed {feed.name} is over {feed.rate_per_minute:g} alerts a minute; "
                    f"retry in {retry_s} s",
                    retry_after_s=retry_s,
                )
            track = None if draft.track is None else (draft.track.sensor_id, draft.track.track_id)
            try:
                number = await journal.call(lambda j: j.feed_posts.reserve(
                    feed=feed.name, route=route, idempotency_key=key,
                    request_hash=request_hash, track=track, draft=draft.data, posted_ms=now,
                    kind=draft.kind, incident=draft.incident,
                ))
                try:
                    message_id = await self.endpoint.post_message(draft.data)
                except Rejected:
                    self._limits.refund(feed.name)
                    await journal.call(lambda j: j.feed_posts.drop(number))
                    raise
                await journal.call(lambda j: j.feed_posts.complete(number, message_id))
            except Rejected:
                raise
            except BaseException:
                self._unsettled = True  # a post may be noted, its message journaled or not
                raise
        return Posted(message_id, draft.incident, draft.kind, replayed=False)
