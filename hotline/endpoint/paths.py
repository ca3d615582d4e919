"""One relay path of an endpoint: what the core keeps per relay, sans-IO.

In a network of several relays (``[relays.<ID>]``) an endpoint signs each body
once and sends it over every relay its link uses. Each relay keeps a log of
its own, so everything the endpoint believes about a relay is kept per relay:
the checkpoint it witnessed (:class:`~hotline.endpoint.witness.Witness`), the
claims and bounds it holds the relay to (:class:`~hotline.endpoint.guard.Guard`),
what the relay has not yet answered (its outbox), its refusals, its link tests
and which messages it delivered to us. The one-relay network has exactly one
path, the relay's.

:func:`channel_alarm` turns the guard's ``withheld`` and ``delivery_late`` on
one path into ``channel_withheld`` when another path delivered the message:

=================  ===================================================================
channel_withheld   a relay logged a message to us that another relay delivered, and did
                   not deliver it within :data:`~hotline.endpoint.alarms.PROOF_BOUND_MS`
                   of our reading it in its log (or delivered it past its precedence's
                   delivery deadline after logging it), while our session to that relay
                   was up and its link tests reached us within :data:`TESTS_FRESH_MS`
                   (or 3 link-test intervals and a timeout, if longer)
=================  ===================================================================

A relay that was down, or that the sender could not reach (then it never
logged the message), raises nothing: the link tests and the relay's own log
are the evidence. A relay whose session is up but whose link tests stopped
reaching us keeps the guard's plain ``withheld`` (named for the relay), so
pausing its link tests does not excuse it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Final

from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.guard import Guard
from hotline.endpoint.state import Answer, PendingEnvelope
from hotline.endpoint.witness import Witness
from hotline.network import Network, RelayInfo
from hotline.protocol.ids import format_id

__all__ = ["TESTS_FRESH_MS", "RelayPath", "channel_alarm"]

TESTS_FRESH_MS: Final = 20_000
"""A relay counts as up while its last link test reached us at most this long ago (or three
link-test intervals and a timeout, when that is longer)."""

_DELIVERED_KEPT: Final = 1 << 16


@dataclass(slots=True, eq=False)
class RelayPath:
    """The core's state for one relay."""

    relay: RelayInfo
    view: Network  # the network as this relay runs it (Network.for_relay)
    witness: Witness
    guard: Guard
    pending: dict[bytes, PendingEnvelope] = field(default_factory=dict)
    retry_at: dict[bytes, int] = field(default_factory=dict)  # pending id → when to resend
    unsigned_alarmed: dict[bytes, None] = field(default_factory=dict)
    test_answers: dict[bytes, Answer] = field(default_factory=dict)
    delivered: OrderedDict[bytes, int] = field(default_factory=OrderedDict)  # id → our time
    last_test_ms: int | None = None  # our time when its last link test reached us
    up_since: int | None = None  # when its session was welcomed; None while down
    since: int = -1  # the highest deliver index of a receipt this relay brought us
    fresh_ms: int = TESTS_FRESH_MS  # how recent its last link test must be to count as up
    # messages whose delivered receipt this relay refused as not (yet) logged: answered by
    # a receipt of its own once it delivers them
    unanswered: OrderedDict[bytes, None] = field(default_factory=OrderedDict)

    @property
    def id(self) -> str:
        return self.relay.id

    def saw(self, ref: bytes, now_ms: int) -> bool:
        """This relay delivered ``ref`` to us now; True if it had not before."""
        if ref in self.delivered:
            return False
        self.delivered[ref] = now_ms
        if len(self.delivered) > _DELIVERED_KEPT:
            self.delivered.popitem(last=False)
        return True

    def answering(self, now_ms: int) -> bool:
        """Up, with link tests reaching us: the evidence that the path works now."""
        return (
            self.up_since is not None
            and self.last_test_ms is not None
            and now_ms - self.last_test_ms <= self.fresh_ms
        )


def channel_alarm(
    path: RelayPath, alarm: RelaySuspected, first: tuple[str, int] | None, now_ms: int
) -> RelaySuspected | None:
    """The path's alarm as the network of several relays sees it (None: not an alarm).

    ``first`` is (relay, our time) of the path that delivered the message first,
    if one did.
    """
    alarm = replace(alarm, relay=path.id)
    if alarm.kind not in (AlarmKind.WITHHELD, AlarmKind.DELIVERY_LATE) or first is None:
        return alarm
    first_relay, first_ms = first
    if first_relay == path.id:
        return alarm
    if alarm.kind is AlarmKind.WITHHELD and not path.answering(now_ms):
        if path.up_since is None:
            return None  # our session to the relay is down: no evidence of withholding
        # up, but its link tests stopped reaching us: the guard's own withheld stands, so a
        # relay cannot escape both alarms by pausing its link tests
        return replace(alarm, evidence=(*alarm.evidence, ("first_relay", first_relay),
                                        ("first_ms", first_ms)))
    late = "never delivered it" if alarm.kind is AlarmKind.WITHHELD else "delivered it late"
    return replace(
        alarm,
        kind=AlarmKind.CHANNEL_WITHHELD,
        sentence=(
            f"relay {path.id} {late}: {alarm.party}'s message {format_id(alarm.ref)} reached "
            f"us over relay {first_relay} {now_ms - first_ms} ms ago; relay {path.id} logged "
            "it and answered its link tests. " + alarm.sentence
        ),
        evidence=(*alarm.evidence, ("relay", path.id), ("first_relay", first_relay),
                  ("first_ms", first_ms)),
    )
