"""Keys, key ids, key periods and UUIDv7 ids: what they accept and what they refuse."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from hotline.errors import ConfigError, Rejected
from hotline.protocol.bodies import TextBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.ids import format_id, make_id, parse_id, uuid7_time_ms
from hotline.protocol.keys import KeyPeriod, PublicKey, SigningKey
from hotline.protocol.vocab import Precedence, Status
from tests.factories import seeded_key

T0 = 1_764_000_000_000


def test_a_public_key_round_trips_through_base64_and_verifies() -> None:
    """Base64 of the 32 raw bytes reads back to the same key, which checks its signatures."""
    key = seeded_key("LT")
    public = PublicKey.from_base64(key.public.to_base64())
    assert public == key.public
    assert public.kid == key.public.kid
    assert public.verify(key.sign(b"m"), b"m")
    assert not public.verify(key.sign(b"m"), b"n")
    assert not public.verify(b"short", b"m")


@pytest.mark.parametrize(("text", "words"), [
    ("not base64!", "is not valid base64"),
    (base64.b64encode(b"\x01" * 31).decode(), "must be 32 bytes"),
])
def test_a_bad_public_key_names_where_it_came_from(text: str, words: str) -> None:
    """A malformed key is a ConfigError naming the place it was read from."""
    with pytest.raises(ConfigError, match=f"endpoints.LT.public_key {words}"):
        PublicKey.from_base64(text, where="endpoints.LT.public_key")
    with pytest.raises(ValueError, match="32 bytes"):
        PublicKey.from_raw(b"\x01" * 31)


def test_a_signing_key_survives_pem() -> None:
    """A key written as PEM PKCS#8 reads back to the same key; another kind is refused."""
    key = SigningKey.generate()
    again = SigningKey.from_pem(key.to_pem())
    assert again.public == key.public
    assert key.public_key_object().public_bytes_raw() == key.public.raw
    with pytest.raises(TypeError, match="not an Ed25519"):
        SigningKey.from_pem(_rsa_pem())


def _rsa_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415  (test only)
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class _Directory:
    """One party whose only key is valid in a period."""

    period: KeyPeriod

    def periods_of(self, party: str) -> list[KeyPeriod] | None:
        return [self.period] if party == "LT" else None


def _text(ts: int, key: SigningKey) -> bytes:
    return seal(TextBody(
        id=make_id(ts, b"\x01" * 10), sender="LT", ts=ts, seq=1, kid=key.public.kid, to=("BY",),
        status=Status.TEST, precedence=Precedence.ROUTINE, text="line check", lang="en",
    ), key)


def test_a_key_signs_only_inside_its_period() -> None:
    """Before not_before or from not_after on, what it signed is a bad signature, with dates."""
    key = seeded_key("LT")
    directory = _Directory(KeyPeriod(key.public, not_before=T0, not_after=T0 + 1_000))
    assert open_envelope(_text(T0, key), directory).body.ts == T0
    with pytest.raises(Rejected, match="valid only from 2025-11-24T16:00:00Z") as early:
        open_envelope(_text(T0 - 1, key), directory)
    assert early.value.code == "bad_signature"
    with pytest.raises(Rejected, match="expired at 2025-11-24T16:00:01Z"):
        open_envelope(_text(T0 + 1_000, key), directory)
    assert KeyPeriod(key.public).covers(0)
    assert not KeyPeriod(key.public).bounded


def test_ids_are_uuid7_with_their_time_and_refuse_bad_input() -> None:
    """A UUIDv7 carries its milliseconds; the text form is the canonical 36 characters."""
    raw = make_id(T0, b"\xff" * 10)
    assert uuid7_time_ms(raw) == T0
    assert parse_id(format_id(raw)) == raw
    with pytest.raises(ValueError, match="48 bits"):
        make_id(-1, b"\x00" * 10)
    with pytest.raises(ValueError, match="10 random bytes"):
        make_id(T0, b"\x00" * 9)
    with pytest.raises(ValueError, match="36 characters"):
        parse_id("0190f1c2")
