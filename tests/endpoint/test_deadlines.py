"""Deadlines at the endpoint: each missed stage is reported once, at the right time."""

from __future__ import annotations

import pytest

from hotline.endpoint.alarms import RelaySuspected
from hotline.endpoint.core import EndpointCore
from hotline.endpoint.events import Overdue, Role
from hotline.endpoint.state import CoreState, OverdueKey, SentMessage
from hotline.protocol.envelope import open_envelope
from hotline.protocol.vocab import Precedence, Stage
from tests.endpoint.builders import T0, Author, deliver, make_core
from tests.factories import TestNet, make_network

FLASH_DELIVERED = 5_000
FLASH_ACKNOWLEDGED = 60_000


@pytest.fixture
def net() -> TestNet:
    return make_network()


def overdue(core: EndpointCore, now: int) -> list[tuple[str, Stage, Role]]:
    events = [e for e in core.tick(now).events if not isinstance(e, RelaySuspected)]
    assert all(isinstance(e, Overdue) for e in events)
    return sorted((e.party, e.stage, e.role) for e in events if isinstance(e, Overdue))


def sent_and_accepted(net: TestNet, author: Author, accepted_at: int) -> tuple[EndpointCore, bytes]:
    core = make_core(net)
    frame = core.send_message(author.warning(sender="LT", to=("BY", "LV")), T0).send[0]
    core.receive(author.accepted(frame, 1), accepted_at)
    return core, frame


def test_undelivered_message_is_overdue_once_at_its_deadline(net: TestNet) -> None:
    """A flash message is overdue for each recipient 5 s after it was accepted, once."""
    author = Author(net)
    core, _ = sent_and_accepted(net, author, T0 + 100)
    assert overdue(core, T0 + 100 + FLASH_DELIVERED - 1) == []
    assert overdue(core, T0 + 100 + FLASH_DELIVERED) == [
        ("BY", Stage.DELIVERED, Role.SENDER),
        ("LV", Stage.DELIVERED, Role.SENDER),
    ]
    assert overdue(core, T0 + 100 + FLASH_DELIVERED + 1) == []


def test_delivered_in_time_leaves_only_the_acknowledgement_deadline(net: TestNet) -> None:
    """A recipient that delivered in time is overdue only when it fails to acknowledge."""
    author = Author(net)
    core, frame = sent_and_accepted(net, author, T0)
    core.receive(deliver(author.receipt("BY", frame, Stage.DELIVERED), 5), T0 + 1000)
    core.receive(deliver(author.receipt("LV", frame, Stage.ACKNOWLEDGED), 6), T0 + 2000)
    assert overdue(core, T0 + FLASH_DELIVERED) == []
    assert overdue(core, T0 + FLASH_ACKNOWLEDGED) == [("BY", Stage.ACKNOWLEDGED, Role.SENDER)]
    assert overdue(core, T0 + 10 * FLASH_ACKNOWLEDGED) == []


def test_deadlines_start_only_when_the_relay_accepted(net: TestNet) -> None:
    """A message the relay has not accepted yet has no running deadline."""
    author = Author(net)
    core = make_core(net)
    core.send_message(author.warning(sender="LT", to=("BY",)), T0)
    assert overdue(core, T0 + 10 * FLASH_ACKNOWLEDGED) == []


def test_unacknowledged_received_message_is_overdue_for_our_operator(net: TestNet) -> None:
    """A received flash warning not acknowledged by us within 60 s is overdue once."""
    author = Author(net)
    core = make_core(net)
    core.receive(deliver(net.seal(author.warning())), T0)
    assert overdue(core, T0 + FLASH_ACKNOWLEDGED - 1) == []
    assert overdue(core, T0 + FLASH_ACKNOWLEDGED) == [("LT", Stage.ACKNOWLEDGED, Role.RECIPIENT)]
    assert overdue(core, T0 + 2 * FLASH_ACKNOWLEDGED) == []


def test_acknowledged_in_time_is_never_overdue(net: TestNet) -> None:
    """Acknowledging before the deadline cancels the operator's deadline."""
    author = Author(net)
    core = make_core(net)
    frame = net.seal(author.warning(precedence=Precedence.ROUTINE))
    core.receive(deliver(frame), T0)
    core.acknowledge(open_envelope(frame, net.network).body.id, None, None, T0 + 1000)
    assert overdue(core, T0 + 10 * 14_400_000) == []


def test_deadlines_already_reported_are_not_reported_after_a_restart(net: TestNet) -> None:
    """Keys fired before a restart stay fired; the others still fire."""
    ref = Author(net).ids(T0)
    sent = SentMessage(ref, b"\x00" * 32, ("BY",), Precedence.FLASH, T0, rejected=False)
    state = CoreState(sent=(sent,), fired=frozenset({OverdueKey(ref, "BY", Stage.DELIVERED)}))
    core = make_core(net, state=state)
    assert overdue(core, T0 + FLASH_ACKNOWLEDGED) == [("BY", Stage.ACKNOWLEDGED, Role.SENDER)]
