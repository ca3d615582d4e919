"""Refusals count only when the relay signed them; the ones we can disprove are alarms."""

from __future__ import annotations

import pytest

from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import MessageRejected
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import RejectedNotice, encode_control
from tests.endpoint.builders import T0, Author, make_core
from tests.factories import TestNet, make_network


@pytest.fixture
def net() -> TestNet:
    return make_network()


@pytest.fixture
def author(net: TestNet) -> Author:
    return Author(net)


def sent(core: EndpointCore, author: Author) -> bytes:
    return core.send_message(author.warning(sender="LT", to=("BY",)), T0).send[0]


def alarm_kinds(out: Output) -> list[AlarmKind]:
    return [e.kind for e in out.events if isinstance(e, RelaySuspected)]


def rejected(out: Output) -> list[str]:
    return [e.code for e in out.events if isinstance(e, MessageRejected)]


def test_an_unsigned_refusal_is_an_alarm_and_the_message_stays_in_the_outbox(
    net: TestNet, author: Author
) -> None:
    """A v1-style rejected with no signed frame changes nothing but raises refusal_unsigned."""
    core = make_core(net)
    frame = sent(core, author)
    ident = open_envelope(frame, net.network).body.id
    out = core.receive(encode_control(RejectedNotice(ident, "link_forbidden", "no link")), T0)
    assert alarm_kinds(out) == [AlarmKind.REFUSAL_UNSIGNED]
    assert rejected(out) == []
    assert core.pending_frames() == (frame,)
    assert AlarmKind.NOT_ACCEPTED in alarm_kinds(core.tick(T0 + 10_000))


def test_a_refusal_signed_by_anyone_but_the_relay_is_unsigned(
    net: TestNet, author: Author
) -> None:
    """BY cannot refuse LT's message in the relay's name."""
    core = make_core(net)
    frame = sent(core, author)
    out = core.receive(author.refused(frame, "replay", "seen", signer="BY"), T0)
    assert alarm_kinds(out) == [AlarmKind.REFUSAL_UNSIGNED]
    assert core.pending_frames() == (frame,)


def test_a_founded_signed_refusal_takes_the_message_out_of_the_outbox(
    net: TestNet, author: Author
) -> None:
    """replay cannot be disproved: the message is rejected, with no alarm against the relay."""
    core = make_core(net)
    frame = sent(core, author)
    out = core.receive(author.refused(frame, "replay", "this id was used before"), T0)
    assert (rejected(out), alarm_kinds(out)) == (["replay"], [])
    assert core.pending_frames() == ()
    assert alarm_kinds(core.tick(T0 + 20_000)) == []


@pytest.mark.parametrize("code", ["link_forbidden", "schema", "bad_signature", "stale"])
def test_a_signed_refusal_we_can_disprove_is_refusal_unfounded(
    net: TestNet, author: Author, code: str
) -> None:
    """A linked recipient, a valid body, our own signature, a fresh ts: the relay is lying."""
    core = make_core(net)
    frame = sent(core, author)
    out = core.receive(author.refused(frame, code, "refused"), T0 + 100)
    assert rejected(out) == [code]
    (alarm,) = [e for e in out.events if isinstance(e, RelaySuspected)]
    assert alarm.kind is AlarmKind.REFUSAL_UNFOUNDED
    assert dict(alarm.evidence)["code"] == code
    assert dict(alarm.evidence)["refusal"]  # the signed refusal, kept as evidence


def test_a_stale_refusal_of_an_old_message_is_founded(net: TestNet, author: Author) -> None:
    """A message older than max_age is stale indeed: no alarm."""
    core = make_core(net)
    frame = sent(core, author)
    later = T0 + net.network.limits.max_age_ms + 1
    out = core.receive(author.refused(frame, "stale", "too old", ts=later), later)
    assert (rejected(out), alarm_kinds(out)) == (["stale"], [])


def test_a_rate_limited_message_is_sent_again_after_retry_after(
    net: TestNet, author: Author
) -> None:
    """rate_limited is temporary: the frame stays pending and goes again once retry_after passes."""
    core = make_core(net)
    frame = sent(core, author)
    out = core.receive(author.refused(frame, "rate_limited", "slow down", retry_after_ms=2_000),
                       T0)
    assert (rejected(out), alarm_kinds(out)) == ([], [])
    assert core.tick(T0 + 1_999).send == ()
    assert core.tick(T0 + 2_000).send == (frame,)
    assert core.pending_frames() == (frame,)


def test_a_flood_of_unsigned_refusals_raises_one_alarm_with_its_text_shown_escaped(
    net: TestNet, author: Author
) -> None:
    """A lying relay repeating itself with direction-changing text: one alarm, the text inert."""
    core = make_core(net)
    frame = sent(core, author)
    ident = open_envelope(frame, net.network).body.id
    lie = "\u202eDEVIECER TON\u202c" + "x" * 5_000
    notice = encode_control(RejectedNotice(ident, "link_forbidden", lie))
    events = [e for _ in range(500) for e in core.receive(notice, T0).events]
    (alarm,) = [e for e in events if isinstance(e, RelaySuspected)]
    assert "\u202e" not in alarm.sentence
    assert "\\u202e" in alarm.sentence
    assert len(alarm.sentence) < 600
    assert core.pending_frames() == (frame,)
