"""C2SP tlog-cosignature v1: timestamped Ed25519 witness signatures on checkpoints."""

from __future__ import annotations

import base64
import hashlib

import pytest

from hotline.auditlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from hotline.auditlog.cosignature import (
    MAX_TIMESTAMP,
    CosignatureVerifier,
    add_cosignature,
    cosign,
    cosignature_key_id,
    cosignature_timestamp,
    cosignature_verifier_key,
    cosigned_message,
    parse_cosignature_verifier_key,
    verify_cosignature,
)
from hotline.auditlog.note import (
    NoteSignature,
    NoteVerifier,
    ed25519_key_id,
    parse_note,
    verifier_key_string,
    verify_note,
)
from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import SigningKey

LOG_KEY = SigningKey.from_seed(bytes(range(32)))
WITNESS_KEY = SigningKey.from_seed(bytes(range(100, 132)))
ORIGIN = "log.example/hotline"
WITNESS = "witness.example/w1"
CHECKPOINT = Checkpoint(ORIGIN, 1234, hashlib.sha256(b"root").digest())
TIME = 1679315147

# cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME): Ed25519 is deterministic.
GOLDEN_LINE = (
    "\u2014 witness.example/w1 CdzwvQAAAABkGFDLuV1rt+IS0lCBjrPdvola53dlPyvV8gpEwvmScLDQhJ1rPmfT"
    "tvwuq3KImO8G8EuC9gtkF2/Mm4xE2jwhKL1/AQ==\n"
)

# The cosignature line of the C2SP tlog-cosignature example.
SPEC_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def test_key_id_hashes_name_newline_type_4_and_key() -> None:
    """The cosigner key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    expected = hashlib.sha256(WITNESS.encode() + b"\n\x04" + WITNESS_KEY.public.raw).digest()
    assert cosignature_key_id(WITNESS, WITNESS_KEY.public.raw) == expected[:4]
    assert expected[:4] != ed25519_key_id(WITNESS, WITNESS_KEY.public.raw)


def test_signed_message_is_header_time_line_and_checkpoint_text() -> None:
    """The signed message is 'cosignature/v1', 'time <t>', then the checkpoint text."""
    message = cosigned_message(CHECKPOINT.text(), TIME)
    assert message == b"cosignature/v1\ntime 1679315147\n" + CHECKPOINT.text().encode()


def test_cosignature_line_matches_the_golden_bytes() -> None:
    """A fixed seed, checkpoint and time give the same signature line every time."""
    assert cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME).line() == GOLDEN_LINE


def test_signature_bytes_are_big_endian_time_then_ed25519() -> None:
    """The signature is the 8-byte big-endian time followed by Ed25519 over the message."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    assert sig.signature[:8] == TIME.to_bytes(8, "big")
    message = cosigned_message(CHECKPOINT.text(), TIME)
    assert WITNESS_KEY.public.verify(sig.signature[8:], message)


def test_the_spec_example_carries_its_timestamp_after_the_key_id() -> None:
    """The C2SP example cosignature decodes to the time its message shows, 1679315147."""
    note = parse_note(CHECKPOINT.text().encode() + b"\n" + SPEC_LINE.encode())
    (sig,) = note.signatures
    assert cosignature_timestamp(sig) == 1679315147


def test_cosign_then_verify_returns_the_timestamp() -> None:
    """A cosignature verifies against the checkpoint it signed and yields its time."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    assert verify_cosignature(CHECKPOINT.text(), sig, WITNESS, WITNESS_KEY.public) == TIME


def test_a_cosignature_over_another_checkpoint_fails() -> None:
    """A cosignature does not verify for a checkpoint with another size or root."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    bigger = Checkpoint(ORIGIN, 1235, CHECKPOINT.root)
    with pytest.raises(NoteError, match="does not verify for this checkpoint"):
        verify_cosignature(bigger.text(), sig, WITNESS, WITNESS_KEY.public)
    other_root = Checkpoint(ORIGIN, 1234, bytes(32))
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(other_root.text(), sig, WITNESS, WITNESS_KEY.public)


def test_a_cosignature_with_an_altered_time_fails() -> None:
    """Changing the timestamp bytes breaks the signature."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    altered = NoteSignature(sig.name, sig.key_id, (TIME + 1).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(NoteError, match="at time 1679315148 does not verify"):
        verify_cosignature(CHECKPOINT.text(), altered, WITNESS, WITNESS_KEY.public)


def test_a_cosignature_under_another_name_or_key_is_refused() -> None:
    """Name and key ID must be the witness's own."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    with pytest.raises(NoteError, match=r"is by witness\.example/w1, expected other\.example"):
        verify_cosignature(CHECKPOINT.text(), sig, "other.example", WITNESS_KEY.public)
    with pytest.raises(NoteError, match=r"has key ID [0-9a-f]{8}, expected"):
        verify_cosignature(CHECKPOINT.text(), sig, WITNESS, LOG_KEY.public)


def test_a_cosignature_of_the_wrong_length_is_refused() -> None:
    """Cosignature bytes are exactly 8 + 64."""
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    short = NoteSignature(sig.name, sig.key_id, sig.signature[:-1])
    with pytest.raises(NoteError, match="71 bytes, expected 72"):
        verify_cosignature(CHECKPOINT.text(), short, WITNESS, WITNESS_KEY.public)


def test_timestamps_above_2_63_are_refused() -> None:
    """Timestamps must not exceed 2^63-1 when signing or verifying."""
    with pytest.raises(UsageError, match="outside 0 to 2\\^63-1"):
        cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, MAX_TIMESTAMP + 1)
    with pytest.raises(UsageError):
        cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, -1)
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, MAX_TIMESTAMP)
    assert verify_cosignature(CHECKPOINT.text(), sig, WITNESS, WITNESS_KEY.public) == MAX_TIMESTAMP
    huge = NoteSignature(sig.name, sig.key_id, (MAX_TIMESTAMP + 1).to_bytes(8, "big") + bytes(64))
    with pytest.raises(NoteError, match="above 2\\^63-1"):
        verify_cosignature(CHECKPOINT.text(), huge, WITNESS, WITNESS_KEY.public)


def test_cosign_refuses_text_that_is_not_a_checkpoint() -> None:
    """Only checkpoint text is cosigned."""
    with pytest.raises(NoteError):
        cosign("not a checkpoint\n", WITNESS, WITNESS_KEY, TIME)


def test_add_cosignature_appends_one_line() -> None:
    """Adding a cosignature appends its line; the log's signature still opens the checkpoint."""
    signed = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    sig = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME)
    cosigned = add_cosignature(signed, sig)
    assert cosigned == signed + GOLDEN_LINE.encode()
    assert open_checkpoint(cosigned, ORIGIN, LOG_KEY.public) == CHECKPOINT


def test_add_cosignature_refuses_a_second_line_by_the_same_key() -> None:
    """A note takes one signature per (name, key ID) pair."""
    signed = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    first = add_cosignature(signed, cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME))
    again = cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME + 60)
    with pytest.raises(NoteError, match=r"already carries a signature by witness\.example/w1"):
        add_cosignature(first, again)


def test_note_verification_checks_cosignatures_through_a_cosignature_verifier() -> None:
    """verify_note with a CosignatureVerifier accepts the witness's line and no other."""
    signed = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    cosigned = add_cosignature(signed, cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME))
    witness = CosignatureVerifier(WITNESS, WITNESS_KEY.public)
    note = verify_note(cosigned, [witness])
    assert [s.name for s in note.signatures] == [WITNESS]
    log = NoteVerifier(ORIGIN, LOG_KEY.public)
    assert len(verify_note(cosigned, [log, witness]).signatures) == 2
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(signed, [witness])


def test_cosignature_verifier_refuses_a_cosignature_for_another_checkpoint() -> None:
    """A cosignature line moved onto another checkpoint fails under verify_note."""
    other = Checkpoint(ORIGIN, 1235, CHECKPOINT.root)
    signed = sign_checkpoint(other, ORIGIN, LOG_KEY)
    moved = add_cosignature(signed, cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, TIME))
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(moved, [CosignatureVerifier(WITNESS, WITNESS_KEY.public)])


def test_cosignature_verifier_key_round_trips() -> None:
    """A witness verifier key is type 0x04 and parses back to the same verifier."""
    vkey = cosignature_verifier_key(WITNESS, WITNESS_KEY.public)
    name, hex_id, encoded = vkey.split("+", 2)
    assert (name, hex_id) == (WITNESS, cosignature_key_id(WITNESS, WITNESS_KEY.public.raw).hex())
    assert base64.b64decode(encoded)[0] == 0x04
    assert parse_cosignature_verifier_key(vkey) == CosignatureVerifier(WITNESS, WITNESS_KEY.public)


def test_an_ed25519_note_key_is_not_a_cosignature_key() -> None:
    """A type 0x01 verifier key is refused as a witness key."""
    vkey = verifier_key_string(WITNESS, 0x01, WITNESS_KEY.public.raw)
    with pytest.raises(NoteError, match="expected an Ed25519 cosignature key"):
        parse_cosignature_verifier_key(vkey)
