"""Judging the relay's refusals of what we sent, sans-IO.

A refusal counts only as the relay's signed ``refused`` body (protocol §3.8)
naming something in our outbox (by ``ref`` and ``hash``, or by ``frame_hash``).
Anything else — a ``rejected`` without a signed frame, a frame that does not
verify or is not the relay's, a refusal of bytes we never sent — changes
nothing and is the alarm ``refusal_unsigned``: the message stays in the outbox
and its accept bound keeps running, so a relay cannot silence a warning by
claiming, unsigned, that it was refused.

A signed refusal we can disprove from ``network.toml`` and our own bytes is
still a refusal (the relay will not carry the message), and also the alarm
``refusal_unfounded``, with the signed refusal as evidence:

=================  =================================================================
code               disproved when
=================  =================================================================
bad_frame          always: we write well-formed envelopes
too_large          the frame is within ``max_frame_bytes``
bad_signature      our signature verifies with our key, inside its period
unknown_sender     always: we are in the network
sender_mismatch    always: we send only as ourselves, on our own session
not_authenticated  always: we send envelopes only after ``welcome``
schema             the body passes every rule of the schema
link_forbidden     every recipient of the message is linked to us
stale              ``ts`` is within the skew of now, not older than ``max_age`` less
                   the skew, and the message has not expired
replay             never (a lost journal may reuse a ``seq``): taken as founded
=================  =================================================================

Several relays: a ``schema`` refusal at ``ref`` of our receipt is founded (the
relay may not have logged the message yet) unless that relay itself delivered
the message to us.

Temporary refusals (``rate_limited``, ``busy``) keep the envelope pending, to be
sent again after ``retry_after_ms``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable
from typing import Final

from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.state import PendingEnvelope
from hotline.errors import RejectCode, Rejected
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import ReceiptBody, RefusedBody, RoutedBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.ids import format_id
from hotline.protocol.schema import visible
from hotline.protocol.session import RejectedNotice

__all__ = ["Judged", "judge_refusal"]

Judged = tuple[RefusedBody, PendingEnvelope, tuple[RelaySuspected, ...]]
"""A signed refusal of one of our envelopes, with the alarm if we can disprove it."""


_EVIDENCE_BYTES: Final = 4096
"""At most this much of an unsigned refusal's frame is kept as evidence (the relay chose it)."""


def _unsigned(notice: RejectedNotice, why: str, now_ms: int) -> RelaySuspected:
    named = format_id(notice.ref) if len(notice.ref) == 16 else "an unnamed envelope"
    code, sentence = visible(notice.code, 40), visible(notice.sentence)
    return RelaySuspected(
        AlarmKind.REFUSAL_UNSIGNED,
        f"the relay answered {named} with {code} ('{sentence}'), but {why}; "
        "it stays in the outbox",
        now_ms, notice.ref if len(notice.ref) == 16 else b"", "", -1,
        (("code", code), ("frame", notice.frame[:_EVIDENCE_BYTES].hex())),
    )


def judge_refusal(
    notice: RejectedNotice,
    pending: Iterable[PendingEnvelope],
    network: Network,
    max_frame: int,
    now_ms: int,
    *,
    several: bool = False,
    delivered: Container[bytes] = frozenset(),
) -> RelaySuspected | Judged | None:
    """The verdict on a ``rejected``: an alarm, a refusal of one of ours, or None (late).

    ``delivered`` holds the ids of the messages this relay delivered to us.
    """
    if not notice.frame:
        return _unsigned(notice, "it carries no refusal signed by the relay", now_ms)
    try:
        envelope = open_envelope(notice.frame, network, max_size=max_frame)
    except Rejected as exc:
        return _unsigned(notice, f"its signed refusal does not verify ({exc})", now_ms)
    body = envelope.body
    if not isinstance(body, RefusedBody) or body.sender != network.relay.id:
        return _unsigned(notice, "its frame is not a refusal signed by the relay", now_ms)
    target = None
    for candidate in pending:
        if body.ref is not None:
            if candidate.id == body.ref and body.hash in (None, candidate.body_hash):
                target = candidate
                break
        elif hashlib.sha256(candidate.frame).digest() == body.frame_hash:
            target = candidate
            break
    if target is None:
        return None  # an answer for something accepted or refused already
    reason = _disproof(body, target, network, max_frame, now_ms)
    if several and target.receipt and body.code is RejectCode.SCHEMA and body.path == "ref":
        # several relays: our receipt may reach a relay before the message it answers does,
        # unless that relay itself delivered the message to us
        ref = _receipt_ref(target, network, max_frame)
        reason = None
        if ref is not None and ref in delivered:
            reason = f"the relay itself delivered message {format_id(ref)} to us"
    if reason is None:
        return body, target, ()
    alarm = RelaySuspected(
        AlarmKind.REFUSAL_UNFOUNDED,
        f"the relay signed a refusal of our {format_id(target.id)} as {body.code.value} "
        f"('{body.sentence}'), but {reason}",
        now_ms, target.id, "", -1,
        (("code", body.code.value), ("refusal", notice.frame.hex())),
    )
    return body, target, (alarm,)


def _receipt_ref(target: PendingEnvelope, network: Network, max_frame: int) -> bytes | None:
    """The message our pending receipt answers (None if our own bytes do not open)."""
    try:
        body = open_envelope(target.frame, network, max_size=max_frame).body
    except Rejected:
        return None
    return body.ref if isinstance(body, ReceiptBody) else None


def _disproof(
    refusal: RefusedBody, target: PendingEnvelope, network: Network, max_frame: int, now_ms: int
) -> str | None:
    """Why the refusal cannot be right, from the network file and our own bytes; or None."""
    code = refusal.code
    if code.temporary or code is RejectCode.REPLAY:
        return None
    try:
        ours = open_envelope(target.frame, network, max_size=max_frame)
    except Rejected:
        return None  # our own bytes fail here too: the refusal may well be right
    body = ours.body
    fixed = {
        RejectCode.BAD_FRAME: "we wrote a well-formed envelope",
        RejectCode.TOO_LARGE: f"the frame is {len(target.frame)} bytes, within {max_frame}",
        RejectCode.BAD_SIGNATURE: "our signature verifies with our key, inside its period",
        RejectCode.UNKNOWN_SENDER: f"{body.sender} is an endpoint of the network",
        RejectCode.SENDER_MISMATCH: "we sent it as ourselves on our own session",
        RejectCode.NOT_AUTHENTICATED: "we send envelopes only after the relay's welcome",
        RejectCode.SCHEMA: "the body passes every rule of the schema",
    }
    if code in fixed:
        return fixed[code]
    if code is RejectCode.LINK_FORBIDDEN:
        if not isinstance(body, RoutedBody):
            return None
        recipients = recipients_of(network, body.sender, body.to)
        if recipients and all(network.linked(body.sender, r) for r in recipients):
            return f"every recipient ({', '.join(recipients)}) is linked to {body.sender}"
        return None
    if code is RejectCode.STALE:
        skew, max_age = network.limits.clock_skew_ms, network.limits.max_age_ms
        fresh = now_ms - max_age + skew < body.ts < now_ms + skew
        expires = body.expires if isinstance(body, WarningBody) else None
        if fresh and (expires is None or expires > now_ms + skew):
            return f"it was written {now_ms - body.ts} ms ago and has not expired"
    return None
