"""The endpoint's local HTTP API (JSON), for the console and local integrators.

============================  =====================================================
``POST /api/messages``        post a warning, update, cancel or text (the body's
                              JSON view without the header): ``202 {"id"}``;
                              ``400 bad_json``; ``422`` with the field at fault
``GET /api/inbox``            received messages, newest first, each once
``POST /api/messages/{id}/ack``  ``{"action", "note"}`` → ``202``; ``404`` unknown;
                              ``409`` already acknowledged
``GET /api/outbox``           our messages with accepted and per-recipient stages
``GET /api/events``           Server-Sent Events: ``snapshot`` first, then every
                              endpoint event under its snake_case name
``GET /api/links``            our relay connection, the last link test answered
                              and the relay's ``/v1/links`` figures when reachable;
                              with several relays also ``relays`` (each one's
                              session, link tests and ``/v1/links`` figures) and
                              ``paths`` (our own figures per peer and relay,
                              :mod:`hotline.endpoint.path_figures`)
``GET /api/links/history``    latency of our messages from the journal, per link,
                              for the console's chart (``?window_s=``, 60 to
                              86400, default 1800): ``{"now_ms", "window_ms",
                              "series": {"accepted": [[sent_ms, ms], …],
                              "delivered/LT": …}}``
``GET /api/checkpoint``       the last checkpoint we judged: size, root, age,
                              consistent
``GET /healthz``              liveness
============================  =====================================================

Errors are ``{"error": code, "field": path, "detail": sentence}``. ``GET /`` is
left for the operator console. Who may call what (a session, the CSRF header,
the Host names) is :mod:`hotline.endpoint.access`; a message or acknowledgement
posted here is signed with the logged-in operator's name as its ``operator``.
Bodies are read whole and by one strict JSON reader
(:func:`hotline.endpoint.http_io.parse_json`: no repeated keys, no ``NaN``, at
most 8 levels deep); ``400 bad_json`` otherwise, ``413 too_large`` over 256 KiB.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import TYPE_CHECKING, Final

from aiohttp import web

from hotline.endpoint.access import SESSION
from hotline.endpoint.appkeys import ENDPOINT
from hotline.endpoint.console_routes import add_console_routes
from hotline.endpoint.errors import AlreadyAcknowledged, BadJson, UnknownMessage
from hotline.endpoint.events import EndpointEvent
from hotline.endpoint.http_io import parse_json, read_body
from hotline.endpoint.login_routes import operator_of
from hotline.endpoint.path_figures import path_figures
from hotline.endpoint.relay_http import RelayUnavailable
from hotline.endpoint.views import (
    checkpoint_json,
    event_json,
    history_json,
    inbox_json,
    link_tests_json,
    outbox_json,
)
from hotline.errors import Rejected
from hotline.protocol.ids import format_id, parse_id
from hotline.protocol.vocab import AckAction

if TYPE_CHECKING:
    from hotline.endpoint.service import Endpoint

__all__ = ["add_routes"]

_MAX_BODY: Final = 256 * 1024
_SSE_KEEPALIVE_S: Final = 15.0
_LINKS_TIMEOUT_S: Final = 2.0
_PATHS_WINDOW_MS: Final = 3_600_000  # the arrivals /api/links figures are read from
_HISTORY_DEFAULT_S: Final = 1800
_HISTORY_MIN_S: Final = 60
_HISTORY_MAX_S: Final = 86_400
_ALARMS_KEPT: Final = 200


def _error(status: int, error: str, field: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "field": field, "detail": detail}, status=status)


def _endpoint(request: web.Request) -> Endpoint:
    return request.app[ENDPOINT]


async def _read_json(request: web.Request, *, empty_ok: bool = False) -> object:
    """The request's whole body as strict JSON; ``_TooLarge`` or ``BadJson`` otherwise."""
    raw = await read_body(request, _MAX_BODY)
    if raw is None:
        raise _TooLarge(f"the request body is larger than {_MAX_BODY} bytes")
    if not raw.strip() and empty_ok:
        return {}
    return parse_json(raw)


class _TooLarge(Exception):
    pass


def _unreadable(exc: BadJson | _TooLarge) -> web.Response:
    if isinstance(exc, _TooLarge):
        return _error(413, "too_large", "", str(exc))
    return _error(400, "bad_json", "", exc.sentence)


def _rejected(exc: Rejected) -> web.Response:
    return _error(422, exc.code, exc.path, exc.sentence)


async def post_message(request: web.Request) -> web.Response:
    try:
        data = await _read_json(request)
    except (BadJson, _TooLarge) as exc:
        return _unreadable(exc)
    try:
        message_id = await _endpoint(request).post_message(data, operator_of(request))
    except Rejected as exc:
        return _rejected(exc)
    return web.json_response({"id": format_id(message_id)}, status=202)


async def acknowledge(request: web.Request) -> web.Response:
    try:
        ref = parse_id(request.match_info["id"])
    except ValueError:
        return _error(404, "not_found", "id", "no received message has this id")
    try:
        data = await _read_json(request, empty_ok=True)
    except (BadJson, _TooLarge) as exc:
        return _unreadable(exc)
    if not isinstance(data, dict):
        return _error(422, "schema", "", "the acknowledgement must be a JSON object")
    unknown = sorted(set(data) - {"action", "note"})
    if unknown:
        return _error(422, "schema", unknown[0], "is not a field of an acknowledgement")
    action_text = data.get("action")
    note = data.get("note")
    try:
        action = None if action_text is None else AckAction(action_text)
    except ValueError:
        allowed = ", ".join(a.value for a in AckAction)
        return _error(422, "schema", "action", f"must be one of {allowed}")
    if note is not None and not isinstance(note, str):
        return _error(422, "schema", "note", "must be a string")
    try:
        await _endpoint(request).acknowledge(ref, action, note or None, operator_of(request))
    except UnknownMessage as exc:
        return _error(404, "not_found", "id", exc.sentence)
    except AlreadyAcknowledged as exc:
        return _error(409, "already_acknowledged", "id", exc.sentence)
    except Rejected as exc:
        return _rejected(exc)
    return web.json_response({"id": format_id(ref), "acknowledged": True}, status=202)


_PAGE_MAX: Final = 500


def _page_query(request: web.Request) -> tuple[int, str | None] | web.Response:
    """``limit`` (1 to 500, default 500) and the ``before`` cursor, or the 400 to answer."""
    text = request.query.get("limit", str(_PAGE_MAX))
    if not text.isdigit() or not 1 <= int(text) <= _PAGE_MAX:
        return _error(400, "bad_query", "limit", f"limit is a whole number from 1 to {_PAGE_MAX}")
    return int(text), request.query.get("before")


async def inbox(request: web.Request) -> web.Response:
    query = _page_query(request)
    if isinstance(query, web.Response):
        return query
    limit, text = query
    before = None
    if text is not None:
        parts = text.split("-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return _error(400, "bad_query", "before",
                          "before is the next cursor of an earlier page (digits-digits)")
        before = (int(parts[0]), int(parts[1]))
    items, cursor = await _endpoint(request).journal.call(
        lambda j: j.reads.inbox_page(limit, before)
    )
    return web.json_response({
        "messages": [inbox_json(i) for i in items],
        "next": None if cursor is None else f"{cursor[0]}-{cursor[1]}",
    })


async def outbox(request: web.Request) -> web.Response:
    query = _page_query(request)
    if isinstance(query, web.Response):
        return query
    limit, text = query
    if text is not None and not text.isdigit():
        return _error(400, "bad_query", "before",
                      "before is the next cursor of an earlier page (digits)")
    before = None if text is None else int(text)
    items, cursor = await _endpoint(request).journal.call(
        lambda j: j.reads.outbox_page(limit, before)
    )
    return web.json_response({
        "messages": [outbox_json(i) for i in items],
        "next": None if cursor is None else str(cursor),
    })


async def checkpoint(request: web.Request) -> web.Response:
    endpoint = _endpoint(request)
    item = await endpoint.journal.call(lambda j: j.reads.last_checkpoint())
    now = endpoint.config.clock()
    body = checkpoint_json(item, now)
    if endpoint.several:  # the last checkpoint judged may be any relay's: each one's
        held = await endpoint.journal.call(lambda j: j.path_checkpoints())
        body["relays"] = {
            relay: None if relay not in held else {
                "size": held[relay][0], "root": base64.b64encode(held[relay][1]).decode(),
                "age_ms": max(0, now - held[relay][2]),
            }
            for relay in endpoint.links
        }
    return web.json_response(body)


async def alarms(request: web.Request) -> web.Response:
    """The alarm history, newest first: missed deadlines, refusals, and the relay caught out."""
    endpoint = _endpoint(request)
    records = await endpoint.journal.call(lambda j: j.reads.events(_ALARMS_KEPT, alarms_only=True))
    return web.json_response({"alarms": [history_json(r) for r in records]})


async def links(request: web.Request) -> web.Response:
    endpoint = _endpoint(request)
    tests = await endpoint.journal.call(lambda j: j.reads.link_tests())
    relay_links: object = None
    try:
        relay_links = await asyncio.wait_for(
            endpoint.relay_http.links_json(), timeout=_LINKS_TIMEOUT_S
        )
    except (RelayUnavailable, TimeoutError):
        relay_links = None
    now = endpoint.config.clock()
    return web.json_response(
        {
            "endpoint": endpoint.me,
            "relay": {
                "url": endpoint.config.ws_url,
                "connected": endpoint.connected,
                "connected_since_ms": endpoint.connected_since_ms,
                "last_disconnect": endpoint.last_disconnect,
            },
            "link_test": link_tests_json(tests, now),
            "relay_links": relay_links,
            **(await _paths_json(endpoint, now) if endpoint.several else {}),
        }
    )


async def _paths_json(endpoint: Endpoint, now: int) -> dict[str, object]:
    """Several relays: each relay's session and figures, and our own figures per path."""
    relays = []
    for link in endpoint.links.values():
        figures: object = None
        with contextlib.suppress(RelayUnavailable, TimeoutError):
            figures = await asyncio.wait_for(link.relay_http.links_json(),
                                             timeout=_LINKS_TIMEOUT_S)
        path = endpoint.core.paths[link.relay]
        relays.append({
            "id": link.relay,
            "url": link.urls[0],
            "operator": path.relay.operator,
            "connected": link.welcomed,
            "connected_since_ms": link.connected_since_ms,
            "last_disconnect": link.last_disconnect,
            "last_test_ms": path.last_test_ms,
            "answering": path.answering(now),
            "pending": endpoint.core.pending_on(link.relay),
            "relay_links": figures,
        })
    window = now - _PATHS_WINDOW_MS
    arrived = await endpoint.journal.call(lambda j: j.path_arrivals(window))
    return {"relays": relays, "paths": path_figures(arrived, endpoint.links),
            "paths_window_ms": _PATHS_WINDOW_MS}


async def links_history(request: web.Request) -> web.Response:
    endpoint = _endpoint(request)
    raw = request.query.get("window_s", str(_HISTORY_DEFAULT_S))
    if not raw.isdigit() or not _HISTORY_MIN_S <= int(raw) <= _HISTORY_MAX_S:
        return web.json_response(
            {"error": "bad_query", "field": "window_s",
             "detail": f"must be whole seconds from {_HISTORY_MIN_S} to {_HISTORY_MAX_S}"},
            status=400,
        )
    window_ms = int(raw) * 1000
    now = endpoint.config.clock()
    series = await endpoint.journal.call(lambda j: j.reads.latency_history(now - window_ms))
    return web.json_response({
        "now_ms": now,
        "window_ms": window_ms,
        "series": {key: [list(p) for p in points] for key, points in series.items()},
    })


async def healthz(request: web.Request) -> web.Response:
    endpoint = _endpoint(request)
    outage = endpoint.outage
    body: dict[str, object] = {
        "ok": True, "endpoint": endpoint.me, "connected": endpoint.connected,
        "relay_unavailable_since_ms": None if outage is None else outage.since_ms,
    }
    if endpoint.several:  # each relay's session and outage (connected: any relay)
        body["relays"] = {
            link.relay: {
                "connected": link.welcomed,
                "relay_unavailable_since_ms": None if link.outage is None
                else link.outage.since_ms,
            }
            for link in endpoint.links.values()
        }
    return web.json_response(body)


def _sse(name: str, payload: object) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {data}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """The event stream; it stays open past the idle timeout (a console on the wall keeps
    alarming) and closes when its operator logs out."""
    endpoint = _endpoint(request)
    session = request.get(SESSION)
    with endpoint.hub.subscribe() as subscription:
        journal = endpoint.journal
        inbox_items = await journal.call(lambda j: j.reads.inbox())
        outbox_items = await journal.call(lambda j: j.reads.outbox())
        last = await journal.call(lambda j: j.reads.last_checkpoint())
        alarms = await journal.call(lambda j: j.reads.events(50, alarms_only=True))
        tests = await journal.call(lambda j: j.reads.link_tests())
        now = endpoint.config.clock()
        snapshot = {
            "endpoint": endpoint.me,
            "connected": endpoint.connected,
            "inbox": [inbox_json(i) for i in inbox_items],
            "outbox": [outbox_json(i) for i in outbox_items],
            "checkpoint": checkpoint_json(last, now),
            "link_test": link_tests_json(tests, now),
            "alarms": [history_json(a) for a in alarms],
        }
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the console went away: stop
            await response.write(_sse("snapshot", snapshot))
            while True:
                try:  # asyncio.timeout: on 3.11 wait_for may drop a cancel (gh-86296)
                    async with asyncio.timeout(_SSE_KEEPALIVE_S):
                        event: EndpointEvent | None = await subscription.next()
                except TimeoutError:
                    if session is not None and session.logged_out:
                        break
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None or (session is not None and session.logged_out):
                    break
                payload = event_json(event)
                await response.write(_sse(str(payload["event"]), payload))
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/messages", post_message)
    app.router.add_post("/api/messages/{id}/ack", acknowledge)
    app.router.add_get("/api/inbox", inbox)
    app.router.add_get("/api/outbox", outbox)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/links", links)
    app.router.add_get("/api/links/history", links_history)
    app.router.add_get("/api/alarms", alarms)
    app.router.add_get("/api/checkpoint", checkpoint)
    app.router.add_get("/healthz", healthz)
    add_console_routes(app)
