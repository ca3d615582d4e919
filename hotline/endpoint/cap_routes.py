"""CAP 1.2 on an endpoint's API: alerts in from sensor feeds, messages out for anyone.

========================================  ==============================================
``POST /api/cap``                         a feed's CAP Alert, Update or Cancel
                                          (``Content-Type: application/xml`` or
                                          ``application/cap+xml``, at most 256 KiB),
                                          with the bearer token, rate limit and
                                          Idempotency-Key of ``POST /api/alerts`` →
                                          ``202 {"id", "incident", "t"}``
``GET /api/messages/{id}.cap``            a warning, update or cancel we sent or
                                          received, as CAP 1.2
                                          (``application/cap+xml; charset=utf-8``)
``GET /api/messages/{id}.cap?ack=1``      its acknowledgement as a CAP ``Ack``; also
``GET /api/messages/{id}/ack.cap``        ``/ack.cap``. For a message we sent,
                                          ``&party=BY`` picks the recipient (default:
                                          the first to acknowledge)
========================================  ==============================================

Reading (:func:`hotline.cap.cap_to_body_json`, the feed's ``to`` as the default
recipients): refusals are ``401`` (token), ``400 bad_header``, ``415
unsupported_media_type`` (field ``content-type``), ``413 too_large`` (field
``alert``), ``422 schema`` with the CAP path at fault (``info[0].area[0].circle``;
``references`` when an Update or Cancel names no warning or update this endpoint
sent or received; ``incidents`` when it names another incident than that
message's), ``409 idempotency_conflict``, ``429 rate_limited``. An Update or
Cancel names the message it follows by its last ``references`` entry: the
message whose CAP identity (``sender``, ``identifier``, in the journal's
``cap_identities``) it is, ours first, else the hotline message id it names;
it takes that message's incident. A post without an Idempotency-Key is keyed
by its CAP identity, so the same CAP alert posted twice is one message; the
identity posted again by another feed or under another key is ``409``.

Writing (:func:`hotline.cap.body_to_cap`): ``sender`` is ``hotline:<origin>``,
``sent`` the message's ``ts`` (a message read from CAP keeps its sender's
``identifier``, ``sender`` and ``sent``); an update's or cancel's
``references`` list the messages it follows back to the warning, as far as the
journal knows them, oldest first, each by its CAP identity. An Ack's
``sender`` is the acknowledging party, its ``identifier`` the acknowledged
receipt's id and ``sent`` that receipt's ``ts``.
Refusals: ``404 not_found`` (unknown id), ``404 no_cap_form`` (a text message),
``404 not_acknowledged``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from aiohttp import web

from hotline.cap import MAX_CAP_BYTES, CapInput, body_to_cap, cap_sender, cap_to_body_json
from hotline.endpoint.appkeys import ENDPOINT
from hotline.endpoint.errors import IdempotencyConflict, PayloadTooLarge
from hotline.endpoint.feed_routes import handle_post
from hotline.endpoint.feed_service import Draft, FeedService, Posted
from hotline.endpoint.feedconfig import Feed
from hotline.endpoint.http_io import error_response
from hotline.endpoint.journal_reads import JournalReads
from hotline.endpoint.records import StoredMessage
from hotline.errors import RejectCode, Rejected, UsageError
from hotline.protocol.ids import format_id, parse_id
from hotline.protocol.jsonview import json_to_body
from hotline.protocol.vocab import BodyType

__all__ = ["CAP_CONTENT_TYPE", "add_cap_routes"]

CAP_CONTENT_TYPE: Final = "application/cap+xml; charset=utf-8"
CAP_MEDIA_TYPES: Final = frozenset({"application/xml", "application/cap+xml"})
_MAX_REFERENCES: Final = 64
_FOLLOWED: Final = frozenset({BodyType.WARNING, BodyType.UPDATE})
_TRUE: Final = frozenset({"1", "true", "yes"})


def _identity_key(cap: CapInput) -> str:
    """An Idempotency-Key from the CAP alert's identity (its sender and identifier)."""
    digest = hashlib.sha256(f"{cap.sender}\x00{cap.identifier}".encode()).hexdigest()
    return f"cap:{digest}"


async def _referenced(service: FeedService, cap: CapInput) -> bytes:
    """The message an Update or Cancel names by its last reference: the message carrying
    that CAP identity (``sender,identifier``), else the hotline message id it is."""
    endpoint = service.endpoint
    sender, identifier, _sent = cap.references[-1]
    found = await endpoint.journal.call(
        lambda j: j.reads.cap_message(sender, identifier, endpoint.me)
    )
    if found is not None:
        return found[0]
    if "ref" in cap.body:
        return parse_id(cap.body["ref"])
    raise Rejected(
        RejectCode.SCHEMA,
        f"the last reference names {sender},{identifier}, which is no CAP alert and no "
        "hotline message id this endpoint sent or received",
        "references",
    )


async def _cap_plan(service: FeedService, cap: CapInput) -> Draft:
    """The CAP body to post; an Update or Cancel takes the incident of the message it names.

    A CAP identity (sender and identifier) names one message of ours: another post of
    it (from another feed, or under another Idempotency-Key) is 409.
    """
    endpoint = service.endpoint
    taken = await endpoint.journal.call(
        lambda j: j.reads.cap_message(cap.sender, cap.identifier, endpoint.me)
    )
    if taken is not None and taken[1] == endpoint.me:
        raise IdempotencyConflict(
            f"the CAP sender {cap.sender} already used the identifier {cap.identifier} for "
            f"message {format_id(taken[0])}; a new alert needs a new identifier"
        )
    body = dict(cap.body)
    kind = BodyType(body["t"])
    if kind is BodyType.WARNING:
        return Draft(body, kind, parse_id(body["incident"]))
    ref = await _referenced(service, cap)
    stored = await endpoint.journal.call(lambda j: j.reads.stored_message(ref))
    if stored is None or stored.type not in _FOLLOWED or stored.incident is None:
        raise Rejected(
            RejectCode.SCHEMA,
            f"the last reference names {format_id(ref)}, which is no warning or update "
            "this endpoint sent or received",
            "references",
        )
    given = body.get("incident")
    if given is not None and parse_id(given) != stored.incident:
        raise Rejected(
            RejectCode.SCHEMA,
            f"must be the incident of the referenced message, {format_id(stored.incident)}",
            "incidents",
        )
    body["ref"] = format_id(ref)
    body["incident"] = format_id(stored.incident)
    return Draft(body, kind, stored.incident)


async def post_cap(request: web.Request) -> web.Response:
    async def submit(service: FeedService, feed: Feed, key: str | None, raw: bytes) -> Posted:
        try:
            cap = cap_to_body_json(raw, now_ms=service.endpoint.config.clock(),
                                   default_to=feed.to_json())
        except Rejected as exc:
            if exc.code is RejectCode.TOO_LARGE:
                raise PayloadTooLarge(exc.sentence) from None
            raise
        return await service.submit(
            feed, route="cap", key=key or _identity_key(cap),
            request_hash=hashlib.sha256(b"cap\x00" + raw).digest(),
            plan=lambda _now: _cap_plan(service, cap),
        )

    return await handle_post(
        request, route="cap", media_types=CAP_MEDIA_TYPES,
        what="a CAP alert is posted as application/xml or application/cap+xml",
        limit=MAX_CAP_BYTES, submit=submit,
    )


# ----------------------------------------------------------------------------- export


def _not_found(error: str, detail: str) -> web.Response:
    return error_response(404, error, "id", detail)


def _cap_identity(stored: StoredMessage) -> tuple[str, str, int]:
    """How CAP names a stored message: its ``cap`` origin's identity, else hotline's."""
    cap = json.loads(stored.body_json).get("cap")
    if isinstance(cap, dict):
        return (str(cap["sender"]), str(cap["identifier"]), int(cap["sent"]))
    return (cap_sender(stored.sender), format_id(stored.id), stored.ts)


def _references(reads: JournalReads, stored: StoredMessage) -> list[tuple[str, str, int]]:
    """``(sender, identifier, sent_ms)`` of the messages ``stored`` follows, oldest first
    (blocking: runs on the journal's thread)."""
    chain: list[tuple[str, str, int]] = []
    ref = json.loads(stored.body_json).get("ref")
    seen: set[str] = set()
    while isinstance(ref, str) and ref not in seen and len(chain) < _MAX_REFERENCES:
        seen.add(ref)
        earlier = reads.stored_message(parse_id(ref))
        if earlier is None:
            break
        chain.append(_cap_identity(earlier))
        ref = json.loads(earlier.body_json).get("ref")
    chain.reverse()
    return chain


async def _export(request: web.Request, *, ack: bool) -> web.Response:
    journal = request.app[ENDPOINT].journal
    text = request.match_info["id"]
    try:
        message_id = parse_id(text)
    except ValueError:
        return _not_found("not_found", f"{text[:60]!r} is not a message id (a UUID)")
    stored = await journal.call(lambda j: j.reads.stored_message(message_id))
    if stored is None:
        return _not_found("not_found", f"no message sent or received here has the id {text}")
    if stored.type is BodyType.TEXT:
        return _not_found("no_cap_form", "a text message has no CAP form; warnings, updates "
                                         "and cancels do")
    body = json_to_body(json.loads(stored.body_json))
    try:
        if ack:
            party = request.query.get("party")
            acks = await journal.call(lambda j: j.reads.acknowledgements(message_id))
            chosen = next((a for a in acks if party is None or a.party == party), None)
            if chosen is None:
                who = party or "anyone"
                return _not_found("not_acknowledged", f"message {text} has no acknowledgement "
                                                      f"by {who} yet")
            xml = body_to_cap(body, sender=cap_sender(chosen.party), sent_ms=chosen.ts,
                              ack=True, ack_id=chosen.receipt_id)
        else:
            references = await journal.call(lambda j: _references(j.reads, stored))
            xml = body_to_cap(body, sender=cap_sender(stored.sender), sent_ms=stored.ts,
                              references=references)
    except UsageError as exc:
        return _not_found("no_cap_form", exc.sentence)
    return web.Response(body=xml, headers={"Content-Type": CAP_CONTENT_TYPE})


async def export_cap(request: web.Request) -> web.Response:
    return await _export(request, ack=request.query.get("ack", "").lower() in _TRUE)


async def export_ack_cap(request: web.Request) -> web.Response:
    return await _export(request, ack=True)


def add_cap_routes(app: web.Application) -> None:
    """Mount CAP in (needs :func:`~hotline.endpoint.feed_routes.add_feed_routes`) and out.

    Mount before any ``/api/messages/{id}`` route, which would take ``….cap`` too.
    """
    app.router.add_post("/api/cap", post_cap)
    app.router.add_get("/api/messages/{id}.cap", export_cap)
    app.router.add_get("/api/messages/{id}/ack.cap", export_ack_cap)
