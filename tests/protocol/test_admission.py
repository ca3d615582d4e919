"""The relay's admission rules: each rule's code, and duplicates answered, not rejected."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hotline.errors import RejectCode, Rejected
from hotline.network import Limits
from hotline.protocol.admission import Admission, Verdict, recipients_of
from hotline.protocol.bodies import ReceiptBody, WarningBody
from hotline.protocol.envelope import Envelope, open_envelope
from hotline.protocol.ids import make_id
from tests.factories import TestNet, make_network
from tests.protocol.strategies import sample_warning

NOW = 1_764_000_000_000


def _open(net: TestNet, body: WarningBody | ReceiptBody) -> Envelope:
    return open_envelope(net.seal(body), net.network)


def _warning(n: int = 1, **changes: object) -> WarningBody:
    fields: dict[str, object] = {"id": make_id(NOW, n.to_bytes(10, "big")), "seq": n}
    fields.update(changes)
    return replace(sample_warning(), **fields)  # type: ignore[arg-type]


@pytest.fixture
def net() -> TestNet:
    return make_network(links=[("BY", "LT"), ("BY", "PL"), ("LT", "LV")])


def _reject(admission: Admission, envelope: Envelope, **kwargs: object) -> Rejected:
    args: dict[str, object] = {"authenticated": envelope.body.sender, "now_ms": NOW}
    args.update(kwargs)
    with pytest.raises(Rejected) as caught:
        admission.check(envelope, **args)  # type: ignore[arg-type]
    return caught.value


def test_a_fresh_message_on_a_link_is_new(net: TestNet) -> None:
    """A well-formed message from the authenticated sender on a link is admitted."""
    assert Admission(net.network).check(
        _open(net, _warning()), authenticated="BY", now_ms=NOW
    ) is Verdict.NEW


def test_unauthenticated_connections_cannot_send(net: TestNet) -> None:
    """Before authentication nothing is admitted."""
    err = _reject(Admission(net.network), _open(net, _warning()), authenticated=None)
    assert err.code is RejectCode.NOT_AUTHENTICATED


def test_an_endpoint_sends_only_as_itself(net: TestNet) -> None:
    """LT's connection cannot pass on a message signed by BY."""
    err = _reject(Admission(net.network), _open(net, _warning()), authenticated="LT")
    assert err.code is RejectCode.SENDER_MISMATCH


def test_a_resend_is_a_duplicate_not_a_rejection(net: TestNet) -> None:
    """The same envelope again after it was recorded is recognised as a duplicate."""
    admission = Admission(net.network)
    envelope = _open(net, _warning())
    admission.check(envelope, authenticated="BY", now_ms=NOW)
    admission.record(envelope)
    assert admission.check(envelope, authenticated="BY", now_ms=NOW + 60_000) is Verdict.DUPLICATE


def test_a_reused_id_with_another_body_is_a_replay(net: TestNet) -> None:
    """A second, different message under a used id is refused as replay."""
    admission = Admission(net.network)
    first = _open(net, _warning())
    admission.record(first)
    err = _reject(admission, _open(net, _warning(1, seq=2)))
    assert err.code is RejectCode.REPLAY
    assert "id" in err.sentence


def test_an_old_seq_is_a_replay(net: TestNet) -> None:
    """seq must rise strictly per sender."""
    admission = Admission(net.network)
    admission.record(_open(net, _warning(5)))
    err = _reject(admission, _open(net, _warning(6, seq=5)))
    assert err.code is RejectCode.REPLAY
    assert "seq 5 is not above 5" in err.sentence


@pytest.mark.parametrize(
    ("offset", "words"),
    [(-30_001, "ahead of"), (86_400_001, "old"), (600_000, "expired")],
)
def test_future_too_old_and_expired_messages_are_stale(
    net: TestNet, offset: int, words: str
) -> None:
    """Ahead of the relay beyond the skew, older than the outbox horizon, or expired: stale."""
    warning = _warning(expires=NOW + 10**9) if words != "expired" else _warning()
    err = _reject(Admission(net.network), _open(net, warning), now_ms=NOW + offset)
    assert err.code is RejectCode.STALE
    assert words in err.sentence


def test_a_message_held_through_an_outage_is_still_fresh(net: TestNet) -> None:
    """A message written an hour ago, not yet expired, is accepted: outboxes hold messages."""
    warning = _warning(expires=NOW + 7_200_000)
    verdict = Admission(net.network).check(
        _open(net, warning), authenticated="BY", now_ms=NOW + 3_600_000
    )
    assert verdict is Verdict.NEW


def test_times_inside_the_skew_window_are_fresh(net: TestNet) -> None:
    """A ts exactly at the skew limit is accepted."""
    verdict = Admission(net.network).check(
        _open(net, _warning()), authenticated="BY", now_ms=NOW + 30_000
    )
    assert verdict is Verdict.NEW


def test_a_recipient_without_a_link_is_forbidden(net: TestNet) -> None:
    """BY has no link to LV, so a warning to LV is link_forbidden."""
    err = _reject(Admission(net.network), _open(net, _warning(to=("LT", "LV"))))
    assert err.code is RejectCode.LINK_FORBIDDEN
    assert "BY-LV" in err.sentence


def test_star_means_every_linked_endpoint(net: TestNet) -> None:
    """'*' expands to the sender's linked endpoints, in configuration order."""
    assert recipients_of(net.network, "BY", "*") == ("LT", "PL")
    assert recipients_of(net.network, "LV", "*") == ("LT",)


def test_a_flood_is_rate_limited_then_recovers() -> None:
    """Past the burst a sender is rate_limited; tokens return as time passes."""
    net = make_network(limits=Limits(messages_per_minute=60))
    admission = Admission(net.network)
    for n in range(1, 11):
        envelope = _open(net, _warning(n))
        admission.check(envelope, authenticated="BY", now_ms=NOW)
        admission.record(envelope)
    err = _reject(admission, _open(net, _warning(11)))
    assert err.code is RejectCode.RATE_LIMITED
    assert "retry in" in err.sentence
    assert admission.check(_open(net, _warning(11)), authenticated="BY", now_ms=NOW + 1_000) is (
        Verdict.NEW
    )


def test_an_envelope_forgotten_after_a_failed_append_gives_its_token_back() -> None:
    """Its append failed: the token it spent returns, so the resend the sender is asked for
    (and a burst of them) is not refused rate_limited for the relay's own failure."""
    net = make_network(limits=Limits(messages_per_minute=60))
    admission = Admission(net.network)
    envelopes = [_open(net, _warning(n)) for n in range(1, 11)]
    for envelope in envelopes:
        admission.check(envelope, authenticated="BY", now_ms=NOW)
        admission.record(envelope)
    assert _reject(admission, _open(net, _warning(11))).code is RejectCode.RATE_LIMITED
    for envelope in envelopes:
        admission.forget(envelope, None)
    for envelope in envelopes:  # the same ten again, at the same moment
        assert admission.check(envelope, authenticated="BY", now_ms=NOW) is Verdict.NEW
        admission.record(envelope)
    assert _reject(admission, _open(net, _warning(11))).code is RejectCode.RATE_LIMITED


def test_a_forgotten_envelope_never_takes_the_last_seq_below_one_logged(net: TestNet) -> None:
    """A relay replica forgets an envelope that lost to another replica's, which it has
    followed (logged) by then: the sender's last seq stays at the logged one, so a seq
    between the two is still refused."""
    admission = Admission(net.network)
    base, lost, winner = (_open(net, _warning(n)) for n in (1, 5, 10))
    for envelope in (base, winner):
        admission.record(envelope)
        admission.logged(envelope)
    admission.record(lost)  # admitted here before the winner was followed
    admission.forget(lost, 1)
    assert admission.last_seq_of("BY") == 10
    assert "not above 10" in _reject(admission, _open(net, _warning(3))).sentence
