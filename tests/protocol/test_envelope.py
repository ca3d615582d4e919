"""Signed envelopes: what verifies and what each kind of damage is called."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import RejectCode, Rejected
from hotline.protocol.envelope import MSG_TAG, body_hash, open_envelope, seal, seal_bytes
from hotline.protocol.schema import encode_body
from tests.factories import make_network, seeded_key
from tests.protocol.strategies import sample_warning

NET = make_network()


def _frame() -> bytes:
    return NET.seal(sample_warning())


def test_a_sealed_envelope_opens_to_its_body() -> None:
    """Sealing then opening gives the body, its exact bytes and its hash."""
    body = replace(sample_warning(), kid=NET.keys["BY"].public.kid)
    frame = seal(body, NET.keys["BY"])
    envelope = open_envelope(frame, NET.network)
    assert envelope.body == body
    assert envelope.body_bytes == encode_body(body)
    assert envelope.hash == body_hash(envelope.body_bytes)
    assert envelope.frame == frame


def test_an_envelope_hash_is_computed_once_and_takes_no_part_in_equality() -> None:
    """The hash is SHA-256 of the body bytes at every ask; hashed or not, envelopes are equal."""
    frame = _frame()
    hashed, fresh = open_envelope(frame, NET.network), open_envelope(frame, NET.network)
    assert hashed.hash == hashed.hash == body_hash(hashed.body_bytes)
    assert hashed == fresh
    assert replace(hashed, body_bytes=b"other").hash == body_hash(b"other")


def test_signature_covers_domain_tag_and_exact_body_bytes() -> None:
    """The signature is Ed25519 over b'hotline/v1/msg\\0' + body, nothing else."""
    frame = _frame()
    _, body_bytes, signature = msgpack.unpackb(frame)
    assert NET.keys["BY"].public.verify(signature, MSG_TAG + body_bytes)
    assert not NET.keys["BY"].public.verify(signature, body_bytes)


@settings(max_examples=60)
@given(st.data())
def test_flipping_any_single_byte_is_rejected(data: st.DataObject) -> None:
    """No single flipped byte anywhere in a signed envelope is ever accepted."""
    frame = bytearray(_frame())
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(Rejected):
        open_envelope(bytes(frame), NET.network)


def test_every_byte_flip_of_the_body_content_is_rejected() -> None:
    """Exhaustively: flipping each byte of the frame (low bit) is rejected."""
    frame = _frame()
    for position in range(len(frame)):
        damaged = bytearray(frame)
        damaged[position] ^= 1
        with pytest.raises(Rejected):
            open_envelope(bytes(damaged), NET.network)


def test_a_flipped_byte_in_a_text_field_is_a_bad_signature() -> None:
    """Altered content that still decodes is caught by the signature."""
    frame = bytearray(_frame())
    position = frame.index(b"BY-LT") + 3
    frame[position] ^= 0x01
    with pytest.raises(Rejected) as caught:
        open_envelope(bytes(frame), NET.network)
    assert caught.value.code is RejectCode.BAD_SIGNATURE


def test_a_signature_by_another_key_is_a_bad_signature() -> None:
    """A body claiming BY's kid but signed by LT's key fails."""
    body = replace(sample_warning(), kid=NET.keys["BY"].public.kid)
    frame = seal_bytes(encode_body(body), NET.keys["LT"])
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, NET.network)
    assert caught.value.code is RejectCode.BAD_SIGNATURE


def test_a_kid_that_is_not_the_senders_is_a_bad_signature() -> None:
    """A kid that names no key of the claimed sender is refused before verifying."""
    body = replace(sample_warning(), kid=NET.keys["LT"].public.kid)
    frame = seal_bytes(encode_body(body), NET.keys["LT"])
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, NET.network)
    assert caught.value.code is RejectCode.BAD_SIGNATURE
    assert "not a key of BY" in str(caught.value)


def test_an_unknown_sender_is_refused() -> None:
    """A body from a party outside the network is unknown_sender."""
    stranger = seeded_key("XX")
    body = replace(sample_warning(sender="XX"), kid=stranger.public.kid)
    with pytest.raises(Rejected) as caught:
        open_envelope(seal(body, stranger), NET.network)
    assert caught.value.code is RejectCode.UNKNOWN_SENDER


def test_an_oversize_frame_is_too_large() -> None:
    """Frames over the limit are refused before being decoded."""
    frame = _frame()
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, NET.network, max_size=len(frame) - 1)
    assert caught.value.code is RejectCode.TOO_LARGE
    assert open_envelope(frame, NET.network, max_size=len(frame)).body.sender == "BY"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xff\xff\xff",
        msgpack.packb([1, b"x"]),
        msgpack.packb([2, b"x", b"s" * 64]),
        msgpack.packb([True, b"x", b"s" * 64]),
        msgpack.packb([1.0, b"x", b"s" * 64]),
        msgpack.packb([1, "text", b"s" * 64]),
        msgpack.packb([1, b"x", b"s" * 63]),
        msgpack.packb({"t": "warning"}),
    ],
    ids=["empty", "garbage", "two items", "version 2", "bool version", "float version",
         "str body",
         "short sig", "map"],
)
def test_malformed_frames_are_bad_frames(frame: bytes) -> None:
    """Anything but [1, bin, bin64] is a bad_frame."""
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, NET.network)
    assert caught.value.code is RejectCode.BAD_FRAME


def test_trailing_bytes_after_the_envelope_are_a_bad_frame() -> None:
    """Exactly one envelope per frame: extra bytes are refused."""
    with pytest.raises(Rejected) as caught:
        open_envelope(_frame() + b"\x00", NET.network)
    assert caught.value.code is RejectCode.BAD_FRAME


def test_schema_is_checked_only_after_the_signature() -> None:
    """A correctly signed body with a bad field is a schema error naming the field."""
    wire = msgpack.unpackb(msgpack.unpackb(_frame())[1])
    wire["track"]["lat"] = 100.0
    wire["kid"] = NET.keys["BY"].public.kid
    body_bytes = msgpack.packb(wire)
    with pytest.raises(Rejected) as caught:
        open_envelope(seal_bytes(body_bytes, NET.keys["BY"]), NET.network)
    assert caught.value.code is RejectCode.SCHEMA
    assert caught.value.path == "track.lat"
    assert str(caught.value) == "track.lat: must be between -90 and 90"


def test_seal_refuses_a_kid_of_another_key() -> None:
    """The local signer never produces an envelope whose kid is not its own."""
    with pytest.raises(ValueError, match="kid"):
        seal(sample_warning(), NET.keys["BY"])
