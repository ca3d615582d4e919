"""Receipts are admitted only from a recipient, with the right hash, while owed; and every
kind of frame spends its own budget, so routine traffic never starves a FLASH warning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from hotline.errors import RejectCode, Rejected
from hotline.network import Limits
from hotline.protocol.admission import (
    CONTROLS_PER_MINUTE,
    SESSIONS_PER_MINUTE,
    Admission,
    LoggedRef,
    Verdict,
)
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import Envelope, open_envelope
from hotline.protocol.ids import make_id
from hotline.protocol.vocab import Precedence, Stage
from tests.factories import TestNet, make_network
from tests.protocol.strategies import sample_warning

NOW = 1_764_000_000_000
NET = make_network(links=[("BY", "LT"), ("BY", "LV"), ("LT", "LV")])


class Sender:
    """Signed bodies of one party, with fresh ids and rising seq."""

    counter = 0

    def __init__(self, party: str, net: TestNet = NET) -> None:
        self.party = party
        self.net = net
        self.seq = 0

    def header(self) -> dict[str, object]:
        Sender.counter += 1
        self.seq += 1
        return {"id": make_id(NOW, Sender.counter.to_bytes(10, "big")), "sender": self.party,
                "ts": NOW, "seq": self.seq}

    def warning(
        self, to: tuple[str, ...] = ("LT",), precedence: Precedence = Precedence.FLASH
    ) -> Envelope:
        body = replace(
            sample_warning(self.party, to), **self.header(), precedence=precedence  # type: ignore[arg-type]
        )
        return open_envelope(self.net.seal(body), self.net.network)

    def receipt(
        self, of: Envelope, stage: Stage = Stage.DELIVERED, digest: bytes | None = None
    ) -> Envelope:
        body = ReceiptBody(
            **self.header(),  # type: ignore[arg-type]
            kid=b"\x00" * 8, ref=of.body.id, hash=of.hash if digest is None else digest,
            stage=stage, action=None,
        )
        return open_envelope(self.net.seal(body), self.net.network)


def _owed(of: Envelope, recipients: tuple[str, ...] = ("LT",)) -> LoggedRef:
    """``of`` as logged and owed every receipt by each of ``recipients``."""
    stages = (Stage.DELIVERED.value, Stage.ACKNOWLEDGED.value, Stage.REJECTED.value)
    return LoggedRef(
        of.body.sender, frozenset(recipients), of.hash,
        frozenset((r, stage) for r in recipients for stage in stages),
    )


def _admit(
    admission: Admission, envelope: Envelope, now: int = NOW, ref: LoggedRef | None = None
) -> Verdict:
    verdict = admission.check(envelope, authenticated=envelope.body.sender, now_ms=now, ref=ref)
    if verdict is Verdict.NEW:
        admission.record(envelope)
    return verdict


def _outcome(
    admission: Admission, envelope: Envelope, now: int = NOW, ref: LoggedRef | None = None
) -> Verdict | Rejected:
    try:
        return _admit(admission, envelope, now, ref)
    except Rejected as exc:
        return exc


def _takes_until_refused(take: Callable[[], None]) -> tuple[int, Rejected]:
    """How many times ``take`` succeeds before it is refused, and the refusal."""
    for taken in range(10_000):
        try:
            take()
        except Rejected as exc:
            return taken, exc
    raise AssertionError("never refused")


def _refused(admission: Admission, envelope: Envelope, ref: LoggedRef | None = None) -> Rejected:
    with pytest.raises(Rejected) as caught:
        admission.check(envelope, authenticated=envelope.body.sender, now_ms=NOW, ref=ref)
    return caught.value


def test_a_recipient_s_receipt_with_the_right_hash_is_admitted() -> None:
    """LT answers BY's warning to it: delivered, then acknowledged."""
    admission = Admission(NET.network)
    warning = Sender("BY").warning()
    lt = Sender("LT")
    assert _admit(admission, lt.receipt(warning), ref=_owed(warning)) is Verdict.NEW
    assert _admit(admission, lt.receipt(warning, Stage.ACKNOWLEDGED), ref=_owed(warning)) is (
        Verdict.NEW
    )


def test_a_receipt_from_a_linked_non_recipient_is_link_forbidden() -> None:
    """LV is linked to BY but the warning went to LT only."""
    warning = Sender("BY").warning()
    err = _refused(Admission(NET.network), Sender("LV").receipt(warning), _owed(warning))
    assert err.code is RejectCode.LINK_FORBIDDEN
    assert "LV is not a recipient" in err.sentence


def test_a_receipt_with_a_wrong_hash_is_a_schema_error_on_hash() -> None:
    """The hash must be SHA-256 of the logged body bytes of ref."""
    warning = Sender("BY").warning()
    receipt = Sender("LT").receipt(warning, digest=b"\x01" * 32)
    err = _refused(Admission(NET.network), receipt, _owed(warning))
    assert (err.code, err.path) == (RejectCode.SCHEMA, "hash")


def test_a_receipt_for_nothing_logged_is_a_schema_error_on_ref() -> None:
    """A ref the relay never logged (nor a receipt's own id) is refused."""
    warning = Sender("BY").warning()
    err = _refused(Admission(NET.network), Sender("LT").receipt(warning), None)
    assert (err.code, err.path) == (RejectCode.SCHEMA, "ref")


def test_a_receipt_no_longer_owed_is_a_replay() -> None:
    """A second delivered receipt (the first was logged) and any receipt for a closed message."""
    warning = Sender("BY").warning()
    lt = Sender("LT")
    first = lt.receipt(warning)
    admission = Admission(NET.network)
    assert _admit(admission, first, ref=_owed(warning)) is Verdict.NEW
    assert _admit(admission, first) is Verdict.DUPLICATE  # the same receipt again: a resend
    owed = _owed(warning)
    delivered_logged = LoggedRef(
        owed.sender, owed.recipients, owed.hash,
        owed.owed - {("LT", Stage.DELIVERED.value)},
    )
    err = _refused(admission, lt.receipt(warning), delivered_logged)
    assert err.code is RejectCode.REPLAY
    assert "a delivered receipt from LT" in err.sentence
    assert "is not owed" in err.sentence
    closed = LoggedRef("BY", frozenset(), warning.hash, frozenset(), closed=True)
    err = _refused(admission, lt.receipt(warning, Stage.ACKNOWLEDGED), closed)
    assert err.code is RejectCode.REPLAY
    assert "owed no more receipts" in err.sentence


def test_routine_junk_never_makes_a_flash_warning_rate_limited() -> None:
    """110 routine posts use up BY's routine budget; its FLASH warning is still admitted."""
    admission = Admission(NET.network)
    by = Sender("BY")
    outcomes = [
        _outcome(admission, by.warning(precedence=Precedence.ROUTINE)) for _ in range(110)
    ]
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert refused
    assert {o.code for o in refused} == {RejectCode.RATE_LIMITED}
    assert _admit(admission, by.warning(precedence=Precedence.FLASH)) is Verdict.NEW
    assert _admit(admission, by.warning(precedence=Precedence.IMMEDIATE)) is Verdict.NEW


def test_a_flash_flood_does_not_starve_routine_either_and_is_limited() -> None:
    """The flash and immediate budget is bounded too; it is a budget of its own."""
    net = make_network(links=[("BY", "LT")], limits=Limits(messages_per_minute=60))
    admission = Admission(net.network)
    by = Sender("BY", net)
    for _ in range(10):
        _admit(admission, by.warning())
    err = _refused(admission, by.warning())
    assert err.code is RejectCode.RATE_LIMITED
    assert err.retry_after_ms > 0
    assert _admit(admission, by.warning(precedence=Precedence.ROUTINE)) is Verdict.NEW


def test_3000_acknowledgement_receipts_from_one_key_are_rate_limited() -> None:
    """One key answering 3,000 messages at once gets a bounded share admitted, the rest refused
    rate_limited with a retry-after; a second later its budget has refilled a little."""
    admission = Admission(NET.network)
    warnings = [Sender("BY").warning() for _ in range(3000)]
    lt = Sender("LT")
    outcomes = [
        _outcome(admission, lt.receipt(w, Stage.ACKNOWLEDGED), ref=_owed(w)) for w in warnings
    ]
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert len(outcomes) - len(refused) == 400  # 4 x 600 a minute: a burst of 400
    assert {o.code for o in refused} == {RejectCode.RATE_LIMITED}
    assert min(o.retry_after_ms for o in refused) > 0
    later = lt.receipt(warnings[-1], Stage.ACKNOWLEDGED)
    assert _admit(admission, later, NOW + 1000, _owed(warnings[-1])) is Verdict.NEW


def test_control_frames_and_sessions_have_budgets() -> None:
    """cosign frames and authentications per endpoint are bounded, and refill with time."""
    admission = Admission(NET.network)
    taken, refusal = _takes_until_refused(lambda: admission.take_control("LT", NOW))
    assert taken == max(10, CONTROLS_PER_MINUTE // 6)
    assert refusal.code is RejectCode.RATE_LIMITED
    admission.take_control("LT", NOW + 60_000 // CONTROLS_PER_MINUTE)
    sessions, _ = _takes_until_refused(lambda: admission.take_session("LT", NOW))
    assert sessions == max(10, SESSIONS_PER_MINUTE // 6)
    admission.take_session("BY", NOW)  # a budget per endpoint

