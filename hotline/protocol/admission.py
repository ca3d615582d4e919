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
                     receipt; only the relay sends test and accepted
duplicate            a seen id with the same body is a resend: answer     (no rejection)
                     it with the original receipt, never deliver twice
replayed id          a seen id with a different body                      replay
sequence             ``seq`` above the sender's last accepted ``seq``     replay
freshness            ``ts`` at most the clock skew ahead of ``now_ms``    stale
                     and at most ``max_age`` behind it (an outbox may
                     hold a message through an outage that long); not
                     past its own ``expires``
links                every recipient is linked to the sender              link_forbidden
rate                 routed messages within the sender's rate             rate_limited
===================  ===================================================  ==================

:meth:`Admission.record` is called once the entry is durable; until then a
second copy of the same envelope is checked afresh.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

from hotline.errors import RejectCode, Rejected
from hotline.network import Network
from hotline.protocol.bodies import (
    ALL_RECIPIENTS,
    AcceptedBody,
    Body,
    LinkTestBody,
    ReceiptBody,
    Recipients,
    RefusedBody,
)
from hotline.protocol.envelope import Envelope, period_problem

__all__ = ["Admission", "SeenIds", "Verdict", "recipients_of"]

_BURST_SHARE: Final = 6  # the burst allowance is ten seconds' worth of the rate, at least 10


class Verdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"


def recipients_of(network: Network, sender: str, to: Recipients) -> tuple[str, ...]:
    """The endpoints a routed message goes to; ``*`` means every linked endpoint."""
    if to == ALL_RECIPIENTS:
        return network.peers(sender)
    return to


class SeenIds(Protocol):
    """id → body hash of every envelope logged or being logged (a dict will do)."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_ms: int


class Admission:
    """Per-sender state: last ``seq``, seen ids with their body hashes, rate buckets."""

    def __init__(self, network: Network, seen: SeenIds | None = None) -> None:
        self._network = network
        self._last_seq: dict[str, int] = {}
        self._seen: SeenIds = {} if seen is None else seen
        self._buckets: dict[str, _Bucket] = {}
        rate = network.limits.messages_per_minute
        self._per_ms = rate / 60_000
        self._burst = max(10.0, rate / _BURST_SHARE)

    def check(
        self,
        envelope: Envelope,
        *,
        authenticated: str | None,
        now_ms: int,
        reply_to: str | None = None,
    ) -> Verdict:
        """Apply every rule; ``reply_to`` is the sender of a receipt's ``ref``."""
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
        self._check_links(body, reply_to)
        if not isinstance(body, ReceiptBody):
            self._take_token(body.sender, now_ms)
        return Verdict.NEW

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

    def _check_links(self, body: Body, reply_to: str | None) -> None:
        if isinstance(body, ReceiptBody):
            if reply_to is None:
                raise Rejected(RejectCode.SCHEMA, "is not a message the relay has seen", "ref")
            if reply_to != self._network.relay.id and not self._network.linked(
                body.sender, reply_to
            ):
                raise Rejected(
                    RejectCode.LINK_FORBIDDEN, f"there is no link {body.sender}-{reply_to}"
                )
            return
        assert not isinstance(body, LinkTestBody | AcceptedBody | RefusedBody)
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

    def _take_token(self, sender: str, now_ms: int) -> None:
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets[sender] = _Bucket(self._burst, now_ms)
        elapsed = max(0, now_ms - bucket.at_ms)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._per_ms)
        bucket.at_ms = max(bucket.at_ms, now_ms)
        if bucket.tokens < 1:
            wait_ms = int((1 - bucket.tokens) / self._per_ms) + 1
            raise Rejected(
                RejectCode.RATE_LIMITED,
                f"{sender} is over {self._network.limits.messages_per_minute} messages "
                f"a minute; retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )
        bucket.tokens -= 1

    def last_seqs(self) -> dict[str, int]:
        """The highest ``seq`` logged per sender (saved in the relay's snapshots)."""
        return dict(self._last_seq)

    def restore_last_seqs(self, last_seqs: dict[str, int]) -> None:
        """Start from saved ``last_seqs`` (a snapshot the relay matched to its log)."""
        self._last_seq = dict(last_seqs)

    def record(self, envelope: Envelope) -> None:
        """Remember a durably accepted envelope (its id, body hash and seq)."""
        body = envelope.body
        self._seen[body.id] = envelope.hash
        last = self._last_seq.get(body.sender, -1)
        self._last_seq[body.sender] = max(last, body.seq)
