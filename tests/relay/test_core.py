"""The relay's sans-IO core on its own: no sockets, no disk, time as an argument."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hotline.protocol.bodies import LinkTestBody, ReceiptBody
from hotline.protocol.envelope import body_hash, open_envelope, seal
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.session import Deliver, decode_control
from hotline.protocol.vocab import Stage
from hotline.relay.core import Append, RelayCore, Send
from tests.factories import make_network

NOW = 1_764_000_000_000


def _core() -> tuple[RelayCore, itertools.count[int]]:
    net = make_network()
    counter = itertools.count(1)
    core = RelayCore(net.network, net.keys["relay"], lambda n: next(counter).to_bytes(n, "big"))
    return core, itertools.count()


def _append_all(
    core: RelayCore, actions: Sequence[object], index: itertools.count[int]
) -> list[object]:
    """Play the edge: every Append becomes durable at the next index, in order."""
    out: list[object] = []
    for action in actions:
        if isinstance(action, Append):
            out.extend(_append_all(core, list(core.appended(action.token, next(index), NOW)),
                                   index))
        else:
            out.append(action)
    return out


def _one_interval(core: RelayCore) -> list[object]:
    """Ticks spanning one link-test interval, from NOW."""
    interval = core.network.link_test_interval_ms
    return [*core.tick(NOW), *core.tick(NOW + interval - 1)]


def test_link_tests_are_logged_for_everyone_and_sent_to_the_online() -> None:
    """Each interval a signed test per endpoint is appended; only online ones get it."""
    core, index = _core()
    _append_all(core, list(core.connected("LT", NOW)), index)
    actions = _one_interval(core)
    tests = [a for a in actions if isinstance(a, Append) and a.envelope is not None]
    bodies = [t.envelope.body for t in tests if t.envelope is not None]
    assert sorted(b.to[0] for b in bodies if isinstance(b, LinkTestBody)) == sorted(
        core.network.endpoints
    )
    sent = [a for a in _append_all(core, actions, index) if isinstance(a, Send)]
    assert {a.party for a in sent} == {"LT"}


def test_link_tests_are_spread_over_the_interval() -> None:
    """Endpoints are tested at different moments, not all in one burst."""
    core, _ = _core()
    first = [a for a in core.tick(NOW) if isinstance(a, Append) and a.envelope is not None]
    assert len(first) == 1
    assert len(core.network.endpoints) > 1


def test_an_answered_link_test_is_released() -> None:
    """Once its receipt is logged, a link test no longer occupies the relay's memory."""
    core, index = _core()
    net = make_network()
    _append_all(core, list(core.connected("LT", NOW)), index)
    sent = [a for a in _append_all(core, _one_interval(core), index) if isinstance(a, Send)]
    deliver = decode_control(sent[0].data)
    assert isinstance(deliver, Deliver)
    test = open_envelope(deliver.frame, net.network).body
    assert isinstance(test, LinkTestBody)
    receipt = ReceiptBody(
        id=make_id(NOW, b"\x05" * 10), sender="LT", ts=NOW, seq=1,
        kid=net.keys["LT"].public.kid, ref=test.id, hash=body_hash(encode_body(test)),
        stage=Stage.DELIVERED,
    )
    before = len(core._messages)
    _append_all(core, list(core.receive("LT", seal(receipt, net.keys["LT"]), NOW + 5)), index)
    assert len(core._messages) == before - 1
    assert test.id not in core._messages


def test_unanswered_link_tests_are_forgotten_after_ten_timeouts() -> None:
    """Tests to endpoints that never answer do not pile up in memory."""
    core, index = _core()
    _append_all(core, _one_interval(core), index)
    assert core._messages
    later = NOW + core.network.link_test_interval_ms + 10 * core.network.link_test_timeout_ms
    _append_all(core, list(core.tick(later)), index)
    remaining = [m for m in core._messages.values() if m.relay_ts < NOW + 5_000]
    assert remaining == []


def test_a_receipt_for_a_message_not_applied_yet_is_recognised_as_such() -> None:
    """A receipt whose ref the core has not applied is 'unseen' until the test is logged."""
    core, index = _core()
    net = make_network()
    _append_all(core, list(core.connected("LT", NOW)), index)
    tests = [a for a in _one_interval(core) if isinstance(a, Append) and a.envelope is not None]
    bodies = [t.envelope.body for t in tests if t.envelope is not None]
    test = next(b for b in bodies if isinstance(b, LinkTestBody) and b.to == ("LT",))
    receipt = seal(ReceiptBody(
        id=make_id(NOW, b"\x06" * 10), sender="LT", ts=NOW, seq=1,
        kid=net.keys["LT"].public.kid, ref=test.id, hash=body_hash(encode_body(test)),
        stage=Stage.DELIVERED,
    ), net.keys["LT"])
    assert core.answers_unseen(receipt)  # signed, not yet logged
    _append_all(core, tests, index)
    assert not core.answers_unseen(receipt)
    assert not core.answers_unseen(b"\x93\x01")  # not an envelope: left to admission
