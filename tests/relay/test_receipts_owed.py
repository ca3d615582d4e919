"""The relay core judges receipts by what each message is still owed, without the log."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from hotline.errors import RejectCode
from hotline.protocol.bodies import LinkTestBody, RefusedBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import RejectedNotice, decode_control
from hotline.protocol.vocab import Stage
from hotline.relay.core import Append, RelayCore, Send
from tests.factories import TestNet, make_network
from tests.relay.conftest import Author, now_ms

NET = make_network(links=[("BY", "LT"), ("BY", "LV"), ("LT", "LV")])


class Edge:
    """Plays the relay's edge: appends become durable at the next index when asked."""

    def __init__(self, net: TestNet = NET) -> None:
        counter = itertools.count(1)
        self.core = RelayCore(
            net.network, net.keys["relay"], lambda n: next(counter).to_bytes(n, "big")
        )
        self.index = itertools.count()
        self.net = net
        self.now = now_ms()  # bodies are dated by the real clock (Author)
        for party in ("BY", "LT", "LV"):
            self.core.connected(party, self.now)

    def send(self, party: str, body: object) -> list[object]:
        """What the core answers to ``party``'s signed body (appends left pending)."""
        return list(self.core.receive(party, self.net.seal(body), self.now))  # type: ignore[arg-type]

    def durable(self, actions: Sequence[object]) -> list[object]:
        out: list[object] = []
        for action in actions:
            if isinstance(action, Append):
                done = self.core.appended(action.token, next(self.index), self.now)
                out.extend(self.durable(done))
            else:
                out.append(action)
        return out


def _refusal_code(actions: Sequence[object]) -> RejectCode:
    (send,) = [a for a in actions if isinstance(a, Send)]
    notice = decode_control(send.data)
    assert isinstance(notice, RejectedNotice)
    body = open_envelope(notice.frame, NET.network).body
    assert isinstance(body, RefusedBody)
    return body.code


def _logged_warning(edge: Edge) -> WarningBody:
    warning = replace(Author("BY").warning(to=("LT",)), kid=NET.keys["BY"].public.kid)
    edge.durable(edge.send("BY", warning))
    return warning


def test_a_second_delivered_receipt_in_flight_is_a_replay() -> None:
    """Two different delivered receipts from LT, the first not yet durable: the second refused."""
    edge = Edge()
    warning = _logged_warning(edge)
    lt = Author("LT")
    first = edge.send("LT", lt.receipt(warning))
    assert any(isinstance(a, Append) for a in first)
    assert _refusal_code(edge.send("LT", lt.receipt(warning))) is RejectCode.REPLAY
    edge.durable(first)
    assert _refusal_code(edge.send("LT", lt.receipt(warning))) is RejectCode.REPLAY


def test_a_message_answered_in_full_takes_no_more_receipts() -> None:
    """Once LT delivered and acknowledged, any further receipt for it is a replay."""
    edge = Edge()
    warning = _logged_warning(edge)
    lt = Author("LT")
    for stage in (Stage.DELIVERED, Stage.ACKNOWLEDGED):
        edge.durable(edge.send("LT", lt.receipt(warning, stage)))
    code = _refusal_code(edge.send("LT", lt.receipt(warning, Stage.ACKNOWLEDGED)))
    assert code is RejectCode.REPLAY


def test_receipts_from_non_recipients_and_with_wrong_hashes_are_refused() -> None:
    """LV was not addressed (link_forbidden); LT's receipt with another hash is schema."""
    edge = Edge()
    warning = _logged_warning(edge)
    assert _refusal_code(edge.send("LV", Author("LV").receipt(warning))) is (
        RejectCode.LINK_FORBIDDEN
    )
    wrong = replace(Author("LT").receipt(warning), hash=b"\x05" * 32)
    assert _refusal_code(edge.send("LT", wrong)) is RejectCode.SCHEMA


def test_a_link_test_is_answered_once_and_only_by_its_endpoint() -> None:
    """The relay's test to LT: LV's answer is refused, LT's admitted once, a second refused."""
    edge = Edge()
    interval = NET.network.link_test_interval_ms
    actions = edge.durable([*edge.core.tick(edge.now), *edge.core.tick(edge.now + interval - 1)])
    tests = [
        body for a in actions if isinstance(a, Send)
        for body in [_delivered_body(a.data)] if isinstance(body, LinkTestBody)
    ]
    test = next(t for t in tests if t.to == ("LT",))
    assert _refusal_code(edge.send("LV", Author("LV").receipt(test))) is (  # type: ignore[arg-type]
        RejectCode.LINK_FORBIDDEN
    )
    lt = Author("LT")
    answered = edge.durable(edge.send("LT", lt.receipt(test)))  # type: ignore[arg-type]
    assert not any(isinstance(a, Send) and _is_refusal(a.data) for a in answered)
    assert _refusal_code(edge.send("LT", lt.receipt(test))) is RejectCode.REPLAY  # type: ignore[arg-type]


def _delivered_body(data: bytes) -> object:
    control = decode_control(data)
    frame = getattr(control, "frame", None)
    if frame is None or isinstance(control, RejectedNotice):
        return None
    return open_envelope(frame, NET.network).body


def _is_refusal(data: bytes) -> bool:
    return isinstance(decode_control(data), RejectedNotice)
