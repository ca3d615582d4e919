"""Signatures are judged against the period of the key that made them (sans-IO)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hotline.auditlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from hotline.endpoint.events import MessageAccepted, MessageReceived
from hotline.endpoint.witness import Fresh, NeedsProof, Refused, Witness
from hotline.errors import RejectCode, Rejected
from hotline.protocol.admission import Admission, Verdict
from hotline.protocol.bodies import AcceptedBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.ids import make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import Accepted, encode_control
from hotline.protocol.timetext import format_utc_ms
from tests.endpoint.builders import Author, Log, deliver, make_core
from tests.factories import make_network
from tests.keys.helpers import T_EXPIRE, T_ROTATE, Rotated, rotate

NET = make_network(("BY", "LT"))
LT = rotate(NET, "LT")
RELAY = rotate(NET, "relay")


def _signed(rotated: Rotated, key: SigningKey, ts: int, seq: int = 1) -> bytes:
    """A warning from LT dated ``ts``, signed with ``key``."""
    body = Author(rotated.after).warning("LT", ("BY",), ts=ts)
    return seal(replace(body, seq=seq, kid=key.public.kid), key)


def _refusal(frame: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, LT.network)
    return caught.value


def test_the_old_key_verifies_what_it_signed_before_and_during_the_overlap() -> None:
    """Bodies dated before the rotation or within the overlap verify with the old key."""
    for ts in (T_ROTATE - 86_400_000, T_ROTATE, T_EXPIRE - 1):
        assert open_envelope(_signed(LT, LT.old, ts), LT.network).body.ts == ts


def test_the_new_key_verifies_from_its_not_before() -> None:
    """The new key signs bodies dated from the rotation on."""
    assert open_envelope(_signed(LT, LT.new, T_ROTATE), LT.network).body.sender == "LT"


def test_the_old_key_is_refused_after_the_overlap_naming_the_key_and_its_end() -> None:
    """A body dated at or after not_after: bad_signature, with the kid and the expiry time."""
    refusal = _refusal(_signed(LT, LT.old, T_EXPIRE))
    assert refusal.code is RejectCode.BAD_SIGNATURE
    assert str(refusal) == (
        f"key {LT.old.public.kid.hex()} of LT expired at {format_utc_ms(T_EXPIRE)}, "
        f"before {format_utc_ms(T_EXPIRE)}"
    )


def test_the_new_key_is_refused_before_its_not_before() -> None:
    """A body dated before the new key's period: bad_signature, naming when it starts."""
    refusal = _refusal(_signed(LT, LT.new, T_ROTATE - 1))
    assert refusal.code is RejectCode.BAD_SIGNATURE
    assert f"is valid only from {format_utc_ms(T_ROTATE)}" in str(refusal)


def test_a_network_without_periods_judges_no_time() -> None:
    """Before the rotation was configured, the same old-key body verifies at any ts."""
    frame = _signed(LT, LT.old, T_EXPIRE + 86_400_000)
    assert open_envelope(frame, LT.before.network).body.sender == "LT"


def _admit(now: int, ts: int) -> Verdict:
    envelope = open_envelope(_signed(LT, LT.old, ts), LT.network)
    return Admission(LT.network).check(envelope, authenticated="LT", now_ms=now)


def test_the_relay_admits_the_old_key_during_the_overlap() -> None:
    """Within the overlap the relay admits a body signed with the old key."""
    assert _admit(T_EXPIRE - 1_000, T_EXPIRE - 2_000) is Verdict.NEW


def test_the_relay_refuses_a_backdated_body_once_the_old_key_expired() -> None:
    """After the overlap the old key cannot slip in a body dated inside it."""
    with pytest.raises(Rejected) as caught:
        _admit(T_EXPIRE, T_EXPIRE - 1_000)
    assert caught.value.code is RejectCode.BAD_SIGNATURE
    assert f"expired at {format_utc_ms(T_EXPIRE)}" in str(caught.value)


def test_an_endpoint_takes_a_late_delivery_signed_in_the_overlap() -> None:
    """Store and forward: a message signed in the overlap still verifies when delivered later."""
    core = make_core(LT.after, "BY")
    frame = _signed(LT, LT.old, T_EXPIRE - 1)
    out = core.receive(deliver(frame, 3), T_EXPIRE + 86_400_000)
    assert any(isinstance(event, MessageReceived) for event in out.events)


def _note(size: int, *signers: SigningKey) -> bytes:
    log = Log(RELAY.after)
    log.grow(size)
    origin = RELAY.network.relay.origin
    return sign_checkpoint(Checkpoint(origin, size, log.root(size)), origin, list(signers))


def test_a_checkpoint_signed_by_both_relay_keys_satisfies_either_key() -> None:
    """During the overlap the relay signs with both keys; a holder of either key accepts."""
    note = _note(4, RELAY.new, RELAY.old)
    origin = RELAY.network.relay.origin
    assert open_checkpoint(note, origin, RELAY.old.public).size == 4
    assert open_checkpoint(note, origin, RELAY.new.public).size == 4
    old_witness = Witness(origin, RELAY.before.network.relay.periods, None)
    new_witness = Witness(origin, RELAY.network.relay.periods, None)
    assert isinstance(old_witness.observe(note, T_ROTATE), Fresh)
    assert isinstance(new_witness.observe(note, T_ROTATE), Fresh)


def test_a_witness_refuses_a_checkpoint_signed_only_by_an_expired_relay_key() -> None:
    """After the overlap the old relay key alone vouches for nothing new."""
    witness = Witness(RELAY.network.relay.origin, RELAY.network.relay.periods, None)
    assert isinstance(witness.observe(_note(4, RELAY.old), T_EXPIRE - 1), Fresh)
    verdict = witness.observe(_note(4, RELAY.old), T_EXPIRE)
    assert isinstance(verdict, Refused)
    assert "no signature by a known key" in verdict.reason


def test_a_witness_follows_the_log_across_the_relay_rotation() -> None:
    """Held under the old key, the next checkpoint under the new key is checked for consistency."""
    log = Log(RELAY.after)
    log.grow(9)
    origin = RELAY.network.relay.origin
    witness = Witness(origin, RELAY.network.relay.periods, None)
    first = witness.observe(_note(5, RELAY.old), T_ROTATE - 1)
    assert isinstance(first, Fresh)
    witness.hold(first)
    need = witness.observe(_note(9, RELAY.new), T_EXPIRE)
    assert isinstance(need, NeedsProof)
    settled = witness.check_proof(need, log.proof(5, 9))
    assert isinstance(settled, Fresh)
    assert settled.checkpoint.size == 9


def _accepted(frame: bytes, index: int, key: SigningKey, ts: int) -> bytes:
    envelope = open_envelope(frame, RELAY.network)
    body = AcceptedBody(
        id=make_id(ts, index.to_bytes(10, "big")), sender="relay", ts=ts, seq=index,
        kid=key.public.kid, ref=envelope.body.id, hash=envelope.hash, index=index,
    )
    return encode_control(Accepted(seal(body, key)))


def test_an_endpoint_accepts_relay_receipts_signed_with_either_relay_key() -> None:
    """In the overlap an accepted receipt verifies whichever relay key signed it."""
    author = Author(RELAY.after)
    core = make_core(RELAY.after, "BY")
    for index, key in ((1, RELAY.old), (2, RELAY.new)):
        sent = core.send_message(author.warning("BY", ("LT",), ts=T_ROTATE), T_ROTATE).send[0]
        out = core.receive(_accepted(sent, index, key, T_ROTATE + index), T_ROTATE + index)
        accepted = [e for e in out.events if isinstance(e, MessageAccepted)]
        assert [e.index for e in accepted] == [index]
