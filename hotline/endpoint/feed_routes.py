"""The sensor-feed routes of an endpoint: ``POST /api/alerts``, and the post flow CAP shares.

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

The feed service (:mod:`hotline.endpoint.feed_service`) does the work; this
module reads the request (:mod:`hotline.endpoint.http_io`) and answers it.

Invariants: every post that became a message is in the journal's
``feed_posts`` with the feed, its key, the hash of its request and its sensor
track, so replays and correlation survive a restart. Feed posts run one at a
time (one lock), so a retry racing its original, or two reports of one track,
are decided in order. A post is noted before its message is signed and
completed after; a crash in between is settled when the endpoint starts
(:meth:`~hotline.endpoint.feed_ledger.FeedLedger.reconcile`). The feeds
file is read at start (a bad one stops the start) and again whenever it
changes; a bad change is logged and the feeds before it stay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import web

from hotline.endpoint.appkeys import ENDPOINT, FEEDS, LOG_LINES
from hotline.endpoint.correlation import Alert, continued_incident, draft_of, read_alert
from hotline.endpoint.errors import PayloadTooLarge, RequestRefused, UnsupportedMediaType
from hotline.endpoint.feed_service import Draft, FeedRegistry, FeedService, Posted
from hotline.endpoint.feedconfig import Feed
from hotline.endpoint.http_io import (
    JSON_MEDIA_TYPES,
    idempotency_key,
    parse_json,
    read_body,
    refusal_response,
)
from hotline.errors import Rejected
from hotline.protocol.ids import format_id
from hotline.protocol.vocab import BodyType

if TYPE_CHECKING:
    from hotline.endpoint.service import EndpointConfig

__all__ = [
    "MAX_ALERT_BYTES",
    "add_feed_routes",
    "handle_post",
    "log_posted",
    "log_refusal",
    "posted_response",
]

log = structlog.get_logger("hotline.endpoint.feeds")

MAX_ALERT_BYTES: Final = 64 * 1024
_REPLAYED_HEADER: Final = "Idempotent-Replayed"


def posted_response(posted: Posted) -> web.Response:
    """``202`` with the message's id, incident and type; ``Idempotent-Replayed`` on a replay."""
    headers = {_REPLAYED_HEADER: "true"} if posted.replayed else None
    return web.json_response(posted.json(), status=202, headers=headers)


def _request_hash(route: str, payload: bytes) -> bytes:
    return hashlib.sha256(route.encode() + b"\x00" + payload).digest()


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


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
        # a post with no feed's token is anyone's to repeat: its lines are throttled
        extra = (request.app[LOG_LINES].admit("feed_post_refused", request.remote)
                 if not feed_name else {})
        if extra is not None:
            log_refusal(service, route, feed_name, exc, **extra)
        return refusal_response(exc)
    log_posted(service, route, feed_name, posted)
    return posted_response(posted)


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
    service: FeedService, route: str, feed: str, exc: RequestRefused | Rejected,
    **extra: object,
) -> None:
    status = 422 if isinstance(exc, Rejected) else exc.status
    field = exc.path if isinstance(exc, Rejected) else exc.field
    log.warning("feed_post_refused", endpoint=service.endpoint.me, route=route, feed=feed,
                status=status, error=exc.code, field=field, reason=str(exc), **extra)


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
