"""The session's control messages: exact round trips, and refusals that name the field."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import Rejected
from hotline.protocol.session import (
    Accepted,
    Auth,
    Challenge,
    CheckpointNote,
    Control,
    Cosign,
    Deliver,
    RejectedNotice,
    Welcome,
    _fields_of,
    auth_signature,
    decode_control,
    encode_control,
    is_envelope,
    verify_auth,
)
from tests.factories import seeded_key

EXAMPLES: list[Control] = [
    Challenge(b"\x01" * 32, "relay", 1_764_000_000_000),
    Auth("LT", b"\x02" * 64, 41),
    Welcome("LT", 12),
    Deliver(7, b"\x93frame"),
    Accepted(b"\x93accepted"),
    RejectedNotice(b"\x03" * 16, "stale", "too old", ""),
    CheckpointNote(b"hotline.test/log\n3\nroot\n"),
    Cosign("- LT abc="),
]


@pytest.mark.parametrize("control", EXAMPLES, ids=lambda c: type(c).__name__)
def test_every_control_message_round_trips(control: Control) -> None:
    """Encoding then decoding gives the same message; none looks like an envelope."""
    data = encode_control(control)
    assert decode_control(data) == control
    assert not is_envelope(data)


@given(st.integers(0, (1 << 64) - 1), st.binary(max_size=300))
def test_accepted_and_deliver_are_written_as_every_other_control(index: int, frame: bytes) -> None:
    """The two controls written directly give the bytes of the field-by-field writer."""
    for control in (Deliver(index, frame), Accepted(frame)):
        assert encode_control(control) == msgpack.packb(_fields_of(control), use_bin_type=True)
    assert encode_control(Deliver(index, frame)) == msgpack.packb(
        {"t": "deliver", "index": index, "frame": frame}, use_bin_type=True)


def test_an_auth_without_since_reads_as_minus_one() -> None:
    """An endpoint that never received anything may leave ``since`` out."""
    data = msgpack.packb({"t": "auth", "id": "LT", "sig": b"\x02" * 64})
    assert decode_control(data) == Auth("LT", b"\x02" * 64, -1)


@pytest.mark.parametrize(("fields", "path"), [
    ({"t": "hello"}, "t"),
    ({"id": "LT"}, "t"),
    ({"t": "welcome", "id": "LT", "size": "12"}, "size"),
    ({"t": "welcome", "id": "LT", "size": True}, "size"),
    ({"t": "welcome", "id": "LT", "size": 1, "extra": 1, "more": 2}, "extra"),
])
def test_a_malformed_control_message_names_its_field(fields: dict[str, object], path: str) -> None:
    """Unknown types, wrong field types (a bool is no int) and unknown fields are schema errors."""
    with pytest.raises(Rejected) as caught:
        decode_control(msgpack.packb(fields))
    assert (caught.value.code, caught.value.path) == ("schema", path)


def test_envelopes_are_told_apart_by_their_first_byte() -> None:
    """A MessagePack array (fix, 16- or 32-bit) is an envelope; a map or nothing is not."""
    assert is_envelope(b"\x93")
    assert is_envelope(b"\xdc\x00\x03")
    assert not is_envelope(b"")
    assert not is_envelope(b"\x83")


def test_an_auth_verifies_only_for_the_challenge_and_the_key_it_signed() -> None:
    """The answer covers the exact challenge bytes and the endpoint's id."""
    key = seeded_key("LT")
    challenge = encode_control(EXAMPLES[0])
    auth = Auth("LT", auth_signature(challenge, "LT", key), -1)
    verify_auth(challenge, auth, key.public)
    with pytest.raises(Rejected) as caught:
        verify_auth(challenge + b"\x00", auth, key.public)
    assert caught.value.code == "bad_signature"
    with pytest.raises(Rejected):
        verify_auth(challenge, auth, seeded_key("BY").public)
