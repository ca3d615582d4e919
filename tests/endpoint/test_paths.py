"""``channel_withheld``: a relay path that is up but never (or late) delivers what another did."""

from __future__ import annotations

from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.guard import Guard
from hotline.endpoint.paths import TESTS_FRESH_MS, RelayPath, channel_alarm
from hotline.endpoint.witness import Witness
from tests.factories import make_network

T0 = 1_800_000_000_000
MESSAGE = bytes(range(16))


def _path(*, up: bool = True, test_age_ms: int | None = 1_000) -> RelayPath:
    network = make_network().network
    relay = network.relay
    path = RelayPath(relay, network, Witness(relay.origin, relay.periods, None),
                     Guard(network, "LT", lambda _ref: False))
    path.up_since = T0 - 60_000 if up else None
    path.last_test_ms = None if test_age_ms is None else T0 - test_age_ms
    return path


def _withheld() -> RelaySuspected:
    return RelaySuspected(AlarmKind.WITHHELD, "BY's message … is in the log at index 7",
                          T0, MESSAGE, "BY", 7, (("index", 7),))


def test_a_path_that_answers_link_tests_but_never_delivers_is_channel_withheld() -> None:
    """Another relay delivered it, this one is up with fresh link tests: the alarm names both."""
    alarm = channel_alarm(_path(), _withheld(), ("osce", T0 - 16_000), T0)
    assert alarm is not None
    assert alarm.kind is AlarmKind.CHANNEL_WITHHELD
    assert alarm.relay == "relay"
    assert alarm.ref == MESSAGE
    assert dict(alarm.evidence)["first_relay"] == "osce"
    assert "relay relay never delivered it" in alarm.sentence


def test_no_alarm_while_the_path_is_down() -> None:
    """A relay whose session is down is not accused."""
    assert channel_alarm(_path(up=False), _withheld(), ("osce", T0 - 16_000), T0) is None


def test_a_connected_path_whose_link_tests_stopped_keeps_the_plain_withheld() -> None:
    """Pausing its link tests does not let a connected relay escape both alarms."""
    for path in (_path(test_age_ms=TESTS_FRESH_MS + 1), _path(test_age_ms=None)):
        alarm = channel_alarm(path, _withheld(), ("osce", T0 - 16_000), T0)
        assert alarm is not None
        assert alarm.kind is AlarmKind.WITHHELD
        assert alarm.relay == "relay"
        assert dict(alarm.evidence)["first_relay"] == "osce"


def test_a_message_no_path_delivered_stays_withheld_named_for_its_relay() -> None:
    """Without another path's delivery the guard's withheld stands, with the relay named."""
    alarm = channel_alarm(_path(), _withheld(), None, T0)
    assert alarm is not None
    assert alarm.kind is AlarmKind.WITHHELD
    assert alarm.relay == "relay"


def test_a_late_delivery_after_another_path_is_channel_withheld() -> None:
    """The guard's delivery_late on one path, when another path was first, names the relay."""
    late = RelaySuspected(AlarmKind.DELIVERY_LATE, "logged at index 7 but reached us late",
                          T0, MESSAGE, "BY", 7, (("waited_ms", 9_000),))
    alarm = channel_alarm(_path(), late, ("osce", T0 - 9_000), T0)
    assert alarm is not None
    assert alarm.kind is AlarmKind.CHANNEL_WITHHELD
    assert "delivered it late" in alarm.sentence


def test_other_alarms_keep_their_kind_and_gain_the_relay() -> None:
    """A split view on one path is still split_view, now naming the relay it is about."""
    split = RelaySuspected(AlarmKind.SPLIT_VIEW, "two histories", T0, MESSAGE, "BY", -1)
    alarm = channel_alarm(_path(), split, ("osce", T0 - 1), T0)
    assert alarm is not None
    assert alarm.kind is AlarmKind.SPLIT_VIEW
    assert alarm.relay == "relay"
