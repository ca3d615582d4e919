"""LogRules: each rule an honest relay keeps is checked from real signed log entries."""

from __future__ import annotations

import dataclasses

import pytest

from hotline.auditlog.leaf import EntryKind, LogEvent, encode_envelope_entry, encode_event_entry
from hotline.auditlog.rules import Blame, Finding, LogRules, Rule
from hotline.errors import UsageError
from hotline.network import Limits
from hotline.protocol.bodies import (
    AcceptedBody,
    LinkTestBody,
    Recipients,
)
from hotline.protocol.envelope import body_hash, seal_bytes
from hotline.protocol.keys import KeyPeriod, SigningKey
from hotline.protocol.schema import body_to_map, encode_body
from hotline.protocol.vocab import Stage
from hotline.testing.traffic import Traffic
from tests.auditlog.signed import LINKS, NET, T0, LogBuilder
from tests.factories import TestNet, make_network


def check(entries: list[bytes], net: TestNet = NET, **kwargs: bool) -> list[Finding]:
    rules = LogRules(net.network, **kwargs)
    return [finding for i, entry in enumerate(entries) for finding in rules.entry(i, entry)]


def only(findings: list[Finding]) -> tuple[int, str, Blame]:
    assert len(findings) == 1, findings
    return findings[0].index, findings[0].rule, findings[0].blame


def test_an_honest_log_has_no_findings() -> None:
    """Traffic an honest relay logs (messages, receipts, tests, events) breaks no rule."""
    net = make_network()
    frames = Traffic(net.network, net.keys).frames(300)
    entries = [encode_envelope_entry(T0, frame) for frame in frames]
    entries.insert(5, encode_event_entry(T0, LogEvent(EntryKind.CONNECTED, {"party": "LT"})))
    assert check(entries, net) == []
    assert check(entries, net, full_schema=False) == []


def test_an_undecodable_entry_is_corrupt() -> None:
    """Bytes that are no entry, or whose envelope is no [1, body, sig], blame corruption."""
    log = LogBuilder()
    good = log.entry(log.warning_body("BY", ("LT",)))
    broken_frame = encode_envelope_entry(T0, b"\x93\x01\xc4")
    assert only(check([b"\xc1garbage", good])) == (0, Rule.ENTRY_UNDECODABLE, Blame.CORRUPT)
    assert only(check([broken_frame])) == (0, Rule.ENTRY_UNDECODABLE, Blame.CORRUPT)


def test_a_signer_the_network_does_not_know_is_corrupt() -> None:
    """An envelope whose from/kid names no key of the network blames corruption."""
    log = LogBuilder()
    stranger = SigningKey.from_seed(b"\x07" * 32)
    body = dataclasses.replace(log.warning_body("BY", ("LT",)), kid=stranger.public.kid)
    entry = encode_envelope_entry(T0, seal_bytes(encode_body(body), stranger))
    assert only(check([entry])) == (0, Rule.SIGNER_UNKNOWN, Blame.CORRUPT)


def test_a_signature_that_does_not_verify_is_corrupt() -> None:
    """One flipped bit in a logged signature blames corruption, not the relay."""
    log = LogBuilder()
    frame = bytearray(log.net.seal(log.warning_body("BY", ("LT",))))
    frame[-1] ^= 1
    assert only(check([encode_envelope_entry(T0, bytes(frame))])) == (
        0, Rule.SIGNATURE_BAD, Blame.CORRUPT
    )


def _rotated_net(not_after: int) -> TestNet:
    """NET where BY's key may sign only before ``not_after``."""
    by = NET.network.endpoints["BY"]
    endpoints = dict(NET.network.endpoints)
    endpoints["BY"] = dataclasses.replace(by, keys=(KeyPeriod(by.public_key, None, not_after),))
    return TestNet(dataclasses.replace(NET.network, endpoints=endpoints), NET.keys)


def test_a_body_dated_outside_its_keys_period_is_the_relays_fault() -> None:
    """A valid signature by a key on a body dated after the key's period is a relay finding."""
    net = _rotated_net(T0 + 1_000)
    log = LogBuilder(net)
    within = log.entry(log.warning_body("BY", ("LT",), ts=T0))
    after = log.entry(log.warning_body("BY", ("LT",), ts=T0 + 1_000), relay_ts=T0)
    findings = check([within, after], net)
    assert only(findings) == (1, Rule.KEY_OUT_OF_PERIOD, Blame.RELAY)
    assert f"key {net.keys['BY'].public.kid.hex()} of BY expired at" in findings[0].sentence


def test_a_body_logged_after_its_key_expired_is_the_relays_fault() -> None:
    """A backdated body signed with a key that had expired when it was logged is a finding."""
    net = _rotated_net(T0 + 1_000)
    log = LogBuilder(net)
    backdated = log.entry(log.warning_body("BY", ("LT",), ts=T0), relay_ts=T0 + 5_000)
    assert only(check([backdated], net)) == (0, Rule.KEY_EXPIRED, Blame.RELAY)


def test_a_frame_over_the_size_limit_is_the_relays_fault() -> None:
    """An envelope larger than max_frame_bytes was to be refused too_large."""
    net = make_network(links=LINKS, limits=Limits(max_frame_bytes=1024))
    log = LogBuilder(net)
    big = log.entry(log.warning_body("BY", ("LT",), text="x" * 2000))
    assert only(check([big], net)) == (0, Rule.FRAME_TOO_LARGE, Blame.RELAY)


def test_a_signed_body_that_breaks_the_schema_is_the_relays_fault() -> None:
    """A well-signed body with an impossible latitude is a body_schema finding naming the path."""
    log = LogBuilder()
    data = body_to_map(log.warning_body("BY", ("LT",)))
    data["track"] = {**data["track"], "lat": 200.0}  # type: ignore[dict-item]
    findings = check([log.raw_entry(data, "BY")])
    assert only(findings) == (0, Rule.BODY_SCHEMA, Blame.RELAY)
    assert "track.lat" in findings[0].sentence


def test_without_full_schema_the_fields_the_rules_read_are_still_checked() -> None:
    """In the fast mode a malformed ``to`` is still a body_schema finding."""
    log = LogBuilder()
    data = body_to_map(log.warning_body("BY", ("LT",)))
    data["to"] = "LT"
    assert only(check([log.raw_entry(data, "BY")], full_schema=False)) == (
        0, Rule.BODY_SCHEMA, Blame.RELAY
    )


def test_an_accepted_body_in_the_log_is_the_relays_fault() -> None:
    """The relay's accepted answers are never logged."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    accepted = AcceptedBody(
        **log.header("relay"), ref=warning.id, hash=body_hash(encode_body(warning)), index=0
    )
    entries = [log.entry(warning), log.entry(accepted)]
    assert only(check(entries)) == (1, Rule.TYPE_NEVER_LOGGED, Blame.RELAY)


def test_a_refused_body_in_the_log_is_the_relays_fault() -> None:
    """A relay-signed refused body (an answer to one sender) is never logged."""
    log = LogBuilder()
    data = {"t": "refused", **{k: v for k, v in body_to_map(log.test("LT")).items()
                               if k != "t" and k != "to"}}
    assert only(check([log.raw_entry(data, "relay")])) == (
        0, Rule.TYPE_NEVER_LOGGED, Blame.RELAY
    )


def test_an_endpoint_signed_test_is_the_relays_fault() -> None:
    """Only the relay signs link tests."""
    log = LogBuilder()
    forged = LinkTestBody(**log.header("BY"), to=("LT",))
    assert only(check([log.entry(forged)])) == (0, Rule.SENDER_IS_RELAY_ONLY_TYPE, Blame.RELAY)


def test_a_relay_signed_warning_is_the_relays_fault() -> None:
    """The relay signs only tests into the log, never a message of its own."""
    log = LogBuilder()
    data = body_to_map(log.warning_body("BY", ("LT",)))
    data["from"] = "relay"
    data["kid"] = NET.keys["relay"].public.kid
    assert only(check([log.raw_entry(data, "relay")])) == (
        0, Rule.RELAY_SIGNS_ONLY_TESTS, Blame.RELAY
    )


def test_a_reused_id_is_the_relays_fault_once() -> None:
    """The same envelope logged twice, or another body under a used id, is one id_reused each."""
    log = LogBuilder()
    first = log.warning_body("BY", ("LT",))
    other = dataclasses.replace(log.warning_body("BY", ("LV",)), id=first.id)
    entries = [log.entry(first), log.entry(first), log.entry(other)]
    findings = check(entries)
    assert [(f.index, f.rule, f.blame) for f in findings] == [
        (1, Rule.ID_REUSED, Blame.RELAY), (2, Rule.ID_REUSED, Blame.RELAY)
    ]


def test_a_seq_that_does_not_rise_is_the_relays_fault() -> None:
    """seq must rise strictly per sender; other senders keep their own count."""
    log = LogBuilder()
    entries = [
        log.entry(dataclasses.replace(log.warning_body("BY", ("LT",)), seq=5)),
        log.entry(dataclasses.replace(log.warning_body("LT", ("BY",)), seq=1)),
        log.entry(dataclasses.replace(log.warning_body("BY", ("LT",)), seq=5)),
        log.entry(dataclasses.replace(log.warning_body("BY", ("LT",)), seq=6)),
    ]
    assert only(check(entries)) == (2, Rule.SEQ_NOT_RISING, Blame.RELAY)


@pytest.mark.parametrize(
    ("sender", "to"),
    [("BY", ("EE",)), ("BY", ("LT", "PL")), ("BY", ("ZZ",)), ("PL", "*")],
    ids=["unlinked", "one-of-two-unlinked", "not-an-endpoint", "star-without-links"],
)
def test_a_message_to_an_unlinked_recipient_is_the_relays_fault(
    sender: str, to: Recipients
) -> None:
    """Every recipient must be an endpoint linked to the sender; '*' needs a linked endpoint."""
    log = LogBuilder()
    assert only(check([log.entry(log.warning_body(sender, to))])) == (
        0, Rule.LINK_FORBIDDEN, Blame.RELAY
    )


def test_star_means_every_linked_endpoint() -> None:
    """A '*' message from LV may be answered by BY, LT and EE, and not by PL."""
    log = LogBuilder()
    warning = log.warning_body("LV", "*")
    entries = [log.entry(warning)] + [
        log.entry(log.receipt(party, warning)) for party in ("BY", "LT", "EE", "PL")
    ]
    assert only(check(entries)) == (4, Rule.RECEIPT_NOT_FROM_RECIPIENT, Blame.RELAY)


def test_a_receipt_for_nothing_logged_earlier_is_the_relays_fault() -> None:
    """A receipt must refer to an earlier message or test, not a later one nor a receipt."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    early = log.receipt("LT", warning)
    delivered = log.receipt("LT", warning)
    on_receipt = log.receipt("BY", delivered)
    entries = [log.entry(early), log.entry(warning), log.entry(delivered), log.entry(on_receipt)]
    assert [(f.index, f.rule, f.blame) for f in check(entries)] == [
        (0, Rule.RECEIPT_UNKNOWN_REF, Blame.RELAY), (3, Rule.RECEIPT_UNKNOWN_REF, Blame.RELAY)
    ]


def test_a_receipt_from_a_non_recipient_is_the_relays_fault() -> None:
    """LV is linked to BY but was not addressed; a test is answered only by its ``to``."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    test = log.test("LT")
    entries = [
        log.entry(warning), log.entry(log.receipt("LV", warning)),
        log.entry(test), log.entry(log.receipt("LV", test)), log.entry(log.receipt("LT", test)),
    ]
    assert [(f.index, f.rule, f.blame) for f in check(entries)] == [
        (1, Rule.RECEIPT_NOT_FROM_RECIPIENT, Blame.RELAY),
        (3, Rule.RECEIPT_NOT_FROM_RECIPIENT, Blame.RELAY),
    ]


def test_a_receipt_with_a_wrong_hash_is_the_relays_fault() -> None:
    """The receipt's hash must be the SHA-256 of the body bytes logged for its ref."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    wrong = log.receipt("LT", warning, digest=b"\x11" * 32)
    findings = check([log.entry(warning), log.entry(wrong)])
    assert only(findings) == (1, Rule.RECEIPT_HASH_MISMATCH, Blame.RELAY)
    assert body_hash(encode_body(warning)).hex() in findings[0].sentence


def test_a_second_different_receipt_for_one_stage_is_the_relays_fault() -> None:
    """One receipt per (ref, sender, stage): another stage is fine, a second delivered is not."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT", "LV"))
    entries = [
        log.entry(warning),
        log.entry(log.receipt("LT", warning)),
        log.entry(log.receipt("LV", warning)),
        log.entry(log.receipt("LT", warning, Stage.ACKNOWLEDGED)),
        log.entry(log.receipt("LT", warning)),
    ]
    assert only(check(entries)) == (4, Rule.RECEIPT_CONFLICTS, Blame.RELAY)


@pytest.mark.parametrize(("first", "then"), [
    (Stage.ACKNOWLEDGED, Stage.DELIVERED),
    (Stage.REJECTED, Stage.DELIVERED),
    (Stage.ACKNOWLEDGED, Stage.REJECTED),
    (Stage.REJECTED, Stage.ACKNOWLEDGED),
])
def test_a_receipt_the_lifecycle_owes_no_more_is_the_relays_fault(
    first: Stage, then: Stage
) -> None:
    """After a final receipt, a receipt that would not move the recipient's state (implied
    already, or contradicting it) breaks receipt_not_owed: an honest relay refuses it."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    entries = [
        log.entry(warning),
        log.entry(log.receipt("LT", warning, first)),
        log.entry(log.receipt("LT", warning, then)),
    ]
    findings = check(entries)
    assert only(findings) == (2, Rule.RECEIPT_NOT_OWED, Blame.RELAY)
    assert f"LT is {first.value}" in findings[0].sentence


def test_receipts_the_lifecycle_owes_are_sound_in_any_order_it_allows() -> None:
    """delivered then acknowledged, an acknowledgement alone, and delivered then rejected are
    each one recipient's legal answers; recipients are judged apart."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT", "LV"))
    other = log.warning_body("LV", ("EE",))
    entries = [
        log.entry(warning),
        log.entry(other),
        log.entry(log.receipt("LT", warning)),
        log.entry(log.receipt("LV", warning, Stage.ACKNOWLEDGED)),
        log.entry(log.receipt("EE", other)),
        log.entry(log.receipt("LT", warning, Stage.ACKNOWLEDGED)),
        log.entry(log.receipt("EE", other, Stage.REJECTED)),
    ]
    assert check(entries) == []


@pytest.mark.parametrize(("answers", "bad"), [
    ((Stage.DELIVERED,), None),
    ((Stage.REJECTED,), None),
    ((Stage.DELIVERED, Stage.REJECTED), 2),
    ((Stage.REJECTED, Stage.DELIVERED), 2),
    ((Stage.DELIVERED, Stage.ACKNOWLEDGED), 2),
    ((Stage.ACKNOWLEDGED,), 1),
])
def test_a_link_test_is_answered_once_delivered_or_rejected(
    answers: tuple[Stage, ...], bad: int | None
) -> None:
    """A test owes one answer, delivered or rejected: the first closes it; an acknowledged
    one, or any after the first, is not owed."""
    log = LogBuilder()
    probe = log.test("LT")
    entries = [log.entry(probe, signer="relay")]
    entries += [log.entry(log.receipt("LT", probe, stage)) for stage in answers]
    findings = check(entries)
    if bad is None:
        assert findings == []
    else:
        assert only(findings) == (bad, Rule.RECEIPT_NOT_OWED, Blame.RELAY)


def test_a_refused_receipt_does_not_block_the_real_one() -> None:
    """After a logged receipt with a wrong hash, the recipient's correct receipt is no conflict."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    entries = [
        log.entry(warning),
        log.entry(log.receipt("LT", warning, digest=b"\x11" * 32)),
        log.entry(log.receipt("LT", warning)),
    ]
    assert only(check(entries)) == (1, Rule.RECEIPT_HASH_MISMATCH, Blame.RELAY)


def test_one_bad_entry_does_not_make_its_neighbours_findings() -> None:
    """A message logged over a forbidden link is answered by its recipient without a finding."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("EE",))
    entries = [log.entry(warning), log.entry(log.receipt("EE", warning))]
    assert only(check(entries)) == (0, Rule.LINK_FORBIDDEN, Blame.RELAY)


def test_every_finding_of_a_log_is_reported() -> None:
    """Findings do not stop at the first: each bad entry is named with its index."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    entries = [
        log.entry(warning),
        b"\xc1",
        log.entry(log.receipt("LV", warning)),
        log.entry(log.receipt("LT", warning, digest=b"\x00" * 32)),
        log.entry(log.warning_body("BY", ("EE",))),
    ]
    assert [(f.index, f.blame) for f in check(entries)] == [
        (1, Blame.CORRUPT), (2, Blame.RELAY), (3, Blame.RELAY), (4, Blame.RELAY)
    ]


def test_entries_must_be_fed_in_log_order() -> None:
    """Skipping an index is a usage error, not a silent gap in the checks."""
    rules = LogRules(NET.network)
    log = LogBuilder()
    rules.entry(0, log.entry(log.warning_body("BY", ("LT",))))
    with pytest.raises(UsageError):
        rules.entry(2, log.entry(log.warning_body("BY", ("LT",))))


def test_after_a_corrupt_entry_an_unknown_ref_is_not_blamed_on_the_relay() -> None:
    """A receipt may answer the message whose bytes are damaged: that is corruption, not fraud."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    frame = bytearray(log.net.seal(warning))
    frame[-1] ^= 1
    entries = [encode_envelope_entry(T0, bytes(frame)), log.entry(log.receipt("LT", warning))]
    assert [(f.index, f.rule, f.blame) for f in check(entries)] == [
        (0, Rule.SIGNATURE_BAD, Blame.CORRUPT), (1, Rule.RECEIPT_UNKNOWN_REF, Blame.CORRUPT)
    ]
