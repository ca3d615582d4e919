"""The relay's admission rules for verified envelopes, sans-IO.

:class:`Admission` decides whether a verified envelope from an authenticated
connection may enter the log. Time is an argument; nothing here touches a
socket, a disk or a clock. Rules, checked in this order:

===================  ===================================================  ==================
rule                 meaning                                              code
===================  ===================================================  ==================
authenticated        the connection proved who it is                      not_authenticated
sender               ``from`` is the authenticated endpoint               sender_mismatch
key                  the signing key has not expired by ``now_ms`` (the   bad_signature
                     envelope check held its period to ``ts``; this
                     stops a retired key from signing backdated bodies)
type                 endpoints send warning, update, cancel, text,        schema (``t``)
                     receipt; only the relay sends test, accepted and
                     refused
duplicate            a seen id with the same body is a resend: answer     (no rejection)
                     it with the original receipt, never deliver twice
replayed id          a seen id with a different body                      replay
sequence             ``seq`` above the sender's last accepted ``seq``     replay
freshness            ``ts`` at most the clock skew ahead of ``now_ms``    stale
                     and at most ``max_age`` behind it (an outbox may
                     hold a message through an outage that long); not
                     past its own ``expires``
links                every recipient is linked to the sender              link_forbidden
receipt ref          ``ref`` names a logged message or test               schema (``ref``)
receipt sender       the sender is a recipient of ``ref`` (of a test:     link_forbidden
                     its ``to``)
receipt hash         ``hash`` is the SHA-256 of ``ref``'s body bytes      schema (``hash``)
receipt owed         the sender still owes ``ref`` a receipt of that      replay
                     ``stage``: none was admitted before, and ``ref``
                     is still open (not answered by every recipient;
                     a test not answered nor timed out)
rate                 within the sender's budget for its kind of frame     rate_limited
===================  ===================================================  ==================

Budgets (token buckets per sender, :mod:`hotline.protocol.budget`), each
refilling at its rate and holding at most a sixth of a minute's worth:

- flash and immediate messages: ``messages_per_minute`` (at least 10 at once);
- priority and routine messages: ``messages_per_minute`` of their own, so that
  routine traffic can never spend what a FLASH warning needs;
- receipts: :data:`RECEIPTS_PER_MESSAGE` times ``messages_per_minute`` (at
  least 40 at once);
- control frames (``cosign``): :data:`CONTROLS_PER_MINUTE`, and sessions
  (successful ``auth``): :data:`SESSIONS_PER_MINUTE`, taken by the edge with
  :meth:`Admission.take_control` and :meth:`Admission.take_session`.

A ``rate_limited`` rejection carries ``retry_after_ms``: when a token will be
there again. An envelope whose append failed gets its token back
(:meth:`Admission.forget`): the sender is asked to resend it, and a failure of
the relay's must not spend the sender's budget.

What a receipt is judged against is the relay core's: it passes a
:class:`LoggedRef` for the receipt's ``ref`` (its sender, recipients, body hash
and the receipts still owed), built from the messages it still owes receipts
for, so that nothing here grows with the log.

:meth:`Admission.record` is called once an envelope is on its way into the
log (and for every logged envelope when the relay starts); until then a second
copy of the same envelope is checked afresh. :meth:`Admission.forget` undoes it
for an envelope whose append failed: it was never logged, so a resend is new.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import (
    ALL_RECIPIENTS,
    AcceptedBody,
    Body,
    LinkTestBody,
    ReceiptBody,
    Recipients,
    RefusedBody,
    RoutedBody,
)
from hotline.protocol.budget import TokenBucket
from hotline.protocol.envelope import Envelope, period_problem
from hotline.protocol.ids import format_id
from hotline.protocol.topology import Topology
from hotline.protocol.vocab import Precedence

__all__ = [
    "CONTROLS_PER_MINUTE",
    "RECEIPTS_PER_MESSAGE",
    "SESSIONS_PER_MINUTE",
    "Admission",
    "LoggedRef",
    "SeenIds",
    "Verdict",
    "recipients_of",
]

_BURST_SHARE: Final = 6  # a burst holds ten seconds' worth of the rate
RECEIPTS_PER_MESSAGE: Final = 4
"""Receipt budget per sender, in multiples of ``messages_per_minute``: a recipient answers
each message with a delivered and an acknowledged receipt, from several peers at once."""
CONTROLS_PER_MINUTE: Final = 120
"""Control frames (``cosign``) per endpoint and minute; a checkpoint is signed at most each
second, so an honest endpoint cosigns at most 60 a minute."""
SESSIONS_PER_MINUTE: Final = 10
"""Successful authentications per endpoint and minute (each logs connected/disconnected)."""


class Verdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"


def recipients_of(network: Topology, sender: str, to: Recipients) -> tuple[str, ...]:
    """The endpoints a routed message goes to; ``*`` means every linked endpoint."""
    if to == ALL_RECIPIENTS:
        return network.peers(sender)
    return to


class SeenIds(Protocol):
    """id → body hash of every envelope logged or being logged (a dict will do)."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...

    def __delitem__(self, key: bytes, /) -> None: ...


@dataclass(frozen=True, slots=True)
class LoggedRef:
    """A logged message or link test, as a receipt for it is judged.

    ``owed`` holds the (recipient, stage) receipts it may still take; an empty
    ``recipients`` with ``closed`` says it takes none any more (every recipient
    answered it, or it is a link test answered or timed out).
    """

    sender: str
    recipients: frozenset[str]
    hash: bytes
    owed: frozenset[tuple[str, str]]
    closed: bool = False


def _bucket(per_minute: float, least: float) -> TokenBucket:
    return TokenBucket(max(least, per_minute / _BURST_SHARE), per_minute / 60_000)


class Admission:
    """Per-sender state: last ``seq``, seen ids with their body hashes, budgets."""

    def __init__(self, network: Topology, seen: SeenIds | None = None) -> None:
        self._network = network
        self._last_seq: dict[str, int] = {}
        self._logged_seq: dict[str, int] = {}  # the highest seq known in the log, per sender
        self._seen: SeenIds = {} if seen is None else seen
        rate = network.limits.messages_per_minute
        self._urgent = _bucket(rate, 10)
        self._routine = _bucket(rate, 10)
        self._receipt_budget = _bucket(rate * RECEIPTS_PER_MESSAGE, 40)
        self._controls = _bucket(CONTROLS_PER_MINUTE, 10)
        self._sessions = _bucket(SESSIONS_PER_MINUTE, 10)

    def check(
        self,
        envelope: Envelope,
        *,
        authenticated: str | None,
        now_ms: int,
        ref: LoggedRef | None = None,
    ) -> Verdict:
        """Apply every rule of the module docstring, in order; ``ref`` is a receipt's ``ref``."""
        body = envelope.body
        if authenticated is None:
            raise Rejected(RejectCode.NOT_AUTHENTICATED, "authenticate before sending messages")
        if body.sender != authenticated:
            raise Rejected(
                RejectCode.SENDER_MISMATCH,
                f"this connection is {authenticated}, the message is from {body.sender}",
            )
        period = self._network.period_of(body.sender, body.kid)
        if period is not None and period.not_after is not None and now_ms >= period.not_after:
            raise Rejected(RejectCode.BAD_SIGNATURE, period_problem(period, body.sender, now_ms))
        if isinstance(body, LinkTestBody | AcceptedBody | RefusedBody):
            raise Rejected(RejectCode.SCHEMA, f"only the relay sends {body.type} messages", "t")
        seen = self._seen.get(body.id)
        if seen is not None:
            if seen == envelope.hash:
                return Verdict.DUPLICATE
            raise Rejected(RejectCode.REPLAY, "this id was already used for another message")
        last = self._last_seq.get(body.sender)
        if last is not None and body.seq <= last:
            raise Rejected(
                RejectCode.REPLAY,
                f"seq {body.seq} is not above {last}, the last accepted from {body.sender}",
            )
        self._check_freshness(body, now_ms)
        if isinstance(body, ReceiptBody):
            self._check_receipt(body, ref)
        else:
            self._check_links(body)
        bucket, what = self._budget_of(body)
        self._spend(bucket, body.sender, now_ms, what)
        return Verdict.NEW

    def _budget_of(self, body: Body) -> tuple[TokenBucket, str]:
        """The budget an endpoint's envelope spends from, and what it counts."""
        if isinstance(body, ReceiptBody):
            return self._receipt_budget, "receipts"
        if getattr(body, "precedence", None) in (Precedence.FLASH, Precedence.IMMEDIATE):
            return self._urgent, "flash and immediate messages"
        return self._routine, "priority and routine messages"

    def take_control(self, party: str, now_ms: int) -> None:
        """Spend one of ``party``'s control-frame tokens, or raise ``rate_limited``."""
        self._spend(self._controls, party, now_ms, "control frames")

    def take_session(self, party: str, now_ms: int) -> None:
        """Spend one of ``party``'s session tokens (an auth), or raise ``rate_limited``."""
        self._spend(self._sessions, party, now_ms, "sessions")

    def _spend(self, bucket: TokenBucket, sender: str, now_ms: int, what: str) -> None:
        wait_ms = bucket.take(sender, now_ms)
        if wait_ms:
            per_minute = round(bucket.per_ms * 60_000)
            raise Rejected(
                RejectCode.RATE_LIMITED,
                f"{sender} is over {per_minute} {what} a minute; retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )

    def _check_freshness(self, body: Body, now_ms: int) -> None:
        limits = self._network.limits
        if body.ts > now_ms + limits.clock_skew_ms:
            raise Rejected(
                RejectCode.STALE,
                f"ts is {body.ts - now_ms} ms ahead of the relay's clock "
                f"(at most {limits.clock_skew_ms} ms allowed)",
            )
        if body.ts < now_ms - limits.max_age_ms:
            raise Rejected(
                RejectCode.STALE,
                f"ts is {now_ms - body.ts} ms old, more than the {limits.max_age_ms} ms "
                "a message may wait in an outbox",
            )
        expires = getattr(body, "expires", None)
        if isinstance(expires, int) and expires <= now_ms:
            raise Rejected(
                RejectCode.STALE, f"the message expired {now_ms - expires} ms ago", "expires"
            )

    def _check_receipt(self, body: ReceiptBody, logged: LoggedRef | None) -> None:
        if logged is None:
            raise Rejected(
                RejectCode.SCHEMA, "is not a message or test the relay has logged", "ref"
            )
        if logged.closed:
            raise Rejected(
                RejectCode.REPLAY,
                f"{format_id(body.ref)} is owed no more receipts (every recipient answered "
                "it, or it is a link test answered or timed out)",
            )
        if body.sender not in logged.recipients:
            raise Rejected(
                RejectCode.LINK_FORBIDDEN,
                f"{body.sender} is not a recipient of {format_id(body.ref)} "
                f"(from {logged.sender})",
            )
        if body.hash != logged.hash:
            raise Rejected(
                RejectCode.SCHEMA, f"is not the SHA-256 of the body of {format_id(body.ref)}",
                "hash",
            )
        if (body.sender, body.stage.value) not in logged.owed:
            raise Rejected(
                RejectCode.REPLAY,
                f"a {body.stage.value} receipt from {body.sender} for {format_id(body.ref)} "
                "is not owed: one was admitted already, or that stage takes none",
            )

    def _check_links(self, body: RoutedBody) -> None:
        recipients = recipients_of(self._network, body.sender, body.to)
        if not recipients:
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"{body.sender} has no linked endpoint")
        for recipient in recipients:
            if recipient not in self._network.endpoints:
                raise Rejected(
                    RejectCode.LINK_FORBIDDEN, f"{recipient} is not an endpoint of this network"
                )
            if not self._network.linked(body.sender, recipient):
                raise Rejected(
                    RejectCode.LINK_FORBIDDEN, f"there is no link {body.sender}-{recipient}"
                )

    def last_seqs(self) -> dict[str, int]:
        """The highest ``seq`` admitted per sender, logged or on its way to the log."""
        return dict(self._last_seq)

    def logged_seqs(self) -> dict[str, int]:
        """The highest ``seq`` known in the log per sender (saved in the relay's snapshots):
        :meth:`last_seqs` without the envelopes admitted but not (yet) logged."""
        return dict(self._logged_seq)

    def restore_last_seqs(self, last_seqs: dict[str, int]) -> None:
        """Start from saved ``last_seqs`` (a snapshot the relay matched to its log)."""
        self._last_seq = dict(last_seqs)
        self._logged_seq = dict(last_seqs)

    def last_seq_of(self, sender: str) -> int | None:
        """The highest ``seq`` recorded for ``sender``, or None."""
        return self._last_seq.get(sender)

    def forget(self, envelope: Envelope, last_seq: int | None) -> None:
        """Undo :meth:`check` and :meth:`record` for an envelope that was not logged after
        all (its append failed): its id is unseen again, the token it spent is given back
        (the resend the sender is asked for spends it again), and its sender's last
        ``seq`` goes back to ``last_seq`` (the sender's before it was recorded) unless it
        is lower already.

        Going back below any ``seq`` recorded after it is right for the relay's own
        store: an append that fails stops the store, so every envelope recorded after
        it fails too and is forgotten as well. It never goes below a ``seq`` known to be
        logged (:meth:`logged`): a relay replica forgets an envelope that lost to another
        replica's, which it has followed by then.
        """
        body = envelope.body
        if self._seen.get(body.id) == envelope.hash:
            del self._seen[body.id]
        bucket, _ = self._budget_of(body)
        bucket.give_back(body.sender)
        current = self._last_seq.get(body.sender)
        if current is None:
            return
        floor = self._logged_seq.get(body.sender)
        if floor is not None:
            last_seq = floor if last_seq is None else max(last_seq, floor)
        if last_seq is None:
            del self._last_seq[body.sender]
        elif last_seq < current:
            self._last_seq[body.sender] = last_seq

    def logged(self, envelope: Envelope) -> None:
        """``envelope`` is in the log: :meth:`forget` never goes below its ``seq``."""
        body = envelope.body
        self._logged_seq[body.sender] = max(self._logged_seq.get(body.sender, body.seq),
                                            body.seq)

    def record(self, envelope: Envelope) -> None:
        """Remember an envelope on its way into the log (its id, body hash and seq)."""
        body = envelope.body
        self._seen[body.id] = envelope.hash
        last = self._last_seq.get(body.sender, -1)
        self._last_seq[body.sender] = max(last, body.seq)
