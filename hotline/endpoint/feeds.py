"""The sensor-feed API of an endpoint: ``POST /api/alerts``, and what it shares with CAP.

A feed (``feeds.toml``, :mod:`hotline.endpoint.feedconfig`) posts what its
sensor saw; the endpoint signs it as its own warning, or as an update of the
incident the same sensor track opened (:mod:`hotline.endpoint.correlation`),
and sends it like any message the operator writes.

=======================  ====================================================
``POST /api/alerts``     ``Authorization: Bearer TOKEN``; optional
                         ``Idempotency-Key`` (1 to 200 printable ASCII
                         characters); a JSON alert of at most 64 KiB →
                         ``202 {"id", "incident", "t"}`` (``t`` is
                         ``warning`` or ``update``)
=======================  ====================================================

A request is handled in this order, and the first refusal answers it, always
as ``{"error", "field", "detail"}``:

1. ``401 not_authenticated`` (field ``authorization``, with
   ``WWW-Authenticate: Bearer``): no bearer token, or no feed's;
2. ``400 bad_header`` (field ``idempotency-key``): a malformed key;
   ``415 unsupported_media_type`` (field ``content-type``): a body that is not
   ``application/json``;
3. ``413 too_large`` (field ``alert``): over 64 KiB, refused before it is
   parsed; ``400 bad_json``: nested deeper than 8 levels, not JSON, a
   repeated key, ``NaN`` or ``Infinity``;
4. ``422 schema`` with the field's path (``t``, ``incident``, ``ref`` are
   the endpoint's to choose; ``track_id`` must be short text);
5. the Idempotency-Key seen before from this feed: the same request gets the
   first answer again (``202``, with ``Idempotent-Replayed: true``) and nothing
   is sent; another request under it is ``409 idempotency_conflict``;
6. ``429 rate_limited`` with ``Retry-After`` (whole seconds, at least 1): the
   feed's token bucket is empty (:mod:`hotline.endpoint.ratelimit`);
7. ``422`` from composing and signing the message: ``schema`` with the
   path (``track.lat``), or ``link_forbidden`` (field ``to``). A refused
   alert costs no token.

Invariants: every post that became a message is in the journal's
``feed_posts`` with the feed, its key, the hash of its request and its sensor
track, so replays and correlation survive a restart. Feed posts run one at a
time (one lock), so a retry racing its original, or two reports of one track,
are decided in order. A post is noted before its message is signed and
completed after; a crash in between is settled when the endpoint starts
(:meth:`~hotline.endpoint.journal.Journal.reconcile_feed_posts`). The feeds
file is read at start (a bad one stops the start) and again whenever it
changes; a bad change is logged and the feeds before it stay.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import web

from hotline.endpoint.appkeys import ENDPOINT
from hotline.endpoint.correlation import (
    Alert,
    TrackKey,
    continued_incident,
    draft_of,
    read_alert,
)
from hotline.endpoint.errors import (
    BadHeader,
    BadJson,
    IdempotencyConflict,
    NotAuthenticated,
    PayloadTooLarge,
    RateLimited,
    RequestRefused,
    UnsupportedMediaType,
)
from hotline.endpoint.feedconfig import FEEDS_FILE, Feed, FeedConfig, load_feeds
from hotline.endpoint.ratelimit import FeedLimits
from hotline.errors import ConfigError, Rejected
from hotline.network import Network
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.vocab import BodyType

if TYPE_CHECKING:
    from hotline.endpoint.service import Endpoint, EndpointConfig

__all__ = [
    "FEEDS",
    "JSON_MEDIA_TYPES",
    "MAX_ALERT_BYTES",
    "Draft",
    "FeedRegistry",
    "FeedService",
    "Planner",
    "Posted",
    "PostedMessage",
    "add_feed_routes",
    "error_response",
    "handle_post",
    "idempotency_key",
    "log_posted",
    "log_refusal",
    "parse_json",
    "read_body",
    "refusal_response",
]

log = structlog.get_logger("hotline.endpoint.feeds")

MAX_ALERT_BYTES: Final = 64 * 1024
MAX_JSON_DEPTH: Final = 8
JSON_MEDIA_TYPES: Final = frozenset({"application/json"})
MAX_IDEMPOTENCY_KEY: Final = 200
_IDEMPOTENCY_KEY: Final = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET: Final = re.compile(rb"[\[\]{}]")
_READ_CHUNK: Final = 16 * 1024
_ID_RANDOM_BYTES: Final = 10
_REPLAYED_HEADER: Final = "Idempotent-Replayed"


# ----------------------------------------------------------------------------- the feeds file


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


# ----------------------------------------------------------------------------- posting


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
        return {"id": format_id(self.id), "incident": format_id(self.incident),
                "t": self.kind.value}

    def response(self) -> web.Response:
        headers = {_REPLAYED_HEADER: "true"} if self.replayed else None
        return web.json_response(self.json(), status=202, headers=headers)


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
        message it became, or is forgotten (``Journal.reconcile_feed_posts``)."""
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


# ----------------------------------------------------------------------------- HTTP helpers


FEEDS: Final = web.AppKey("feeds", FeedService)


def error_response(
    status: int, error: str, field: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "field": field, "detail": detail},
                             status=status, headers=headers)


def refusal_response(exc: RequestRefused | Rejected) -> web.Response:
    """The reply to a refused request: its status, ``{error, field, detail}``, headers."""
    if isinstance(exc, Rejected):
        return error_response(422, exc.code, exc.path, exc.detail)
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = (
            'Bearer realm="hotline", error="invalid_token"' if exc.token_given
            else 'Bearer realm="hotline"'
        )
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return error_response(exc.status, exc.code, exc.field, exc.sentence, headers or None)


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, or None. Raises BadHeader."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadHeader(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
                        "characters", header="idempotency-key")
    return key


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:  # noqa: ANN401  (json's parse_constant hook)
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> object:
    """One JSON value, with unique keys and finite numbers. Raises BadJson."""
    depth = _nesting_depth(raw)
    if depth > max_depth:
        raise BadJson(f"the JSON nests {depth} levels deep; at most {max_depth} are read")
    try:
        value: object = json.loads(raw, object_pairs_hook=_unique_keys,
                                   parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise BadJson(f"the request body is not valid JSON: {exc}") from None
    return value


def _request_hash(route: str, payload: bytes) -> bytes:
    return hashlib.sha256(route.encode() + b"\x00" + payload).digest()


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


# ----------------------------------------------------------------------------- /api/alerts


async def _alert_plan(service: FeedService, alert: Alert, now_ms: int) -> Draft:
    """A warning with a new incident, or an update of the open incident of the alert's track."""
    journal = service.endpoint.journal
    head = None
    track = alert.track
    if track is not None:
        followed = await journal.call(
            lambda j: j.feed_posts.track_incident(track.feed, track.sensor_id, track.track_id)
        )
        if followed is not None:
            last = await journal.call(lambda j: j.reads.incident_head(followed))
            head = continued_incident(last, now_ms)
    if head is None:
        incident = service.new_id(now_ms)
        return Draft(draft_of(alert, None, incident), BodyType.WARNING, incident, track)
    return Draft(draft_of(alert, head, head.incident), BodyType.UPDATE, head.incident, track)


Submit = Callable[["FeedService", Feed, str | None, bytes], Awaitable["Posted"]]


async def handle_post(
    request: web.Request, *, route: str, media_types: frozenset[str],
    what: str, limit: int, submit: Submit,
) -> web.Response:
    """One feed post, in the documented order: token, Idempotency-Key, media type, size.

    ``what`` names the body in the media-type refusal ("an alert is posted as
    application/json"); ``submit`` parses the body and hands it to the feed
    service. Every refusal is logged and answered as ``{error, field, detail}``.
    """
    service = request.app[FEEDS]
    feed_name = ""
    try:
        feed = service.authenticate(request.headers.get("Authorization"))
        feed_name = feed.name
        key = idempotency_key(request)
        if request.content_type not in media_types:
            raise UnsupportedMediaType(
                f"{what}, not {request.content_type or 'no Content-Type'}"
            )
        raw = await read_body(request, limit)
        if raw is None:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        posted = await submit(service, feed, key, raw)
    except (RequestRefused, Rejected) as exc:
        log_refusal(service, route, feed_name, exc)
        return refusal_response(exc)
    log_posted(service, route, feed_name, posted)
    return posted.response()


async def post_alert(request: web.Request) -> web.Response:
    async def submit(service: FeedService, feed: Feed, key: str | None, raw: bytes) -> Posted:
        data = parse_json(raw)
        alert = read_alert(data, feed)
        return await service.submit(
            feed, route="alerts", key=key,
            request_hash=_request_hash("alerts", _canonical_json(data)),
            plan=lambda now: _alert_plan(service, alert, now),
        )

    return await handle_post(
        request, route="alerts", media_types=JSON_MEDIA_TYPES,
        what="an alert is posted as application/json", limit=MAX_ALERT_BYTES, submit=submit,
    )


def log_refusal(
    service: FeedService, route: str, feed: str, exc: RequestRefused | Rejected
) -> None:
    status = 422 if isinstance(exc, Rejected) else exc.status
    field = exc.path if isinstance(exc, Rejected) else exc.field
    log.warning("feed_post_refused", endpoint=service.endpoint.me, route=route, feed=feed,
                status=status, error=exc.code, field=field, reason=str(exc))


def log_posted(service: FeedService, route: str, feed: str, posted: Posted) -> None:
    name = "feed_post_replayed" if posted.replayed else "feed_post_sent"
    log.info(name, endpoint=service.endpoint.me, route=route, feed=feed,
             id=format_id(posted.id), t=posted.kind.value, incident=format_id(posted.incident))


def add_feed_routes(app: web.Application, config: EndpointConfig) -> None:
    """Mount ``POST /api/alerts``; the feeds file is read now, so a bad one stops the start.

    The app's cleanup context must already open the endpoint (``ENDPOINT``).
    """
    registry = FeedRegistry.open(config.feeds, config.data_dir, config.network,
                                 config.endpoint_id)

    async def feeds(app: web.Application) -> AsyncIterator[None]:
        service = FeedService(app[ENDPOINT], registry)
        await service.settle()
        app[FEEDS] = service
        yield

    app.cleanup_ctx.append(feeds)
    app.router.add_post("/api/alerts", post_alert)
