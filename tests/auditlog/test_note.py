"""C2SP signed notes: format, parsing, key IDs, verifier keys and verification."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.auditlog.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteVerifier,
    ed25519_key_id,
    format_note,
    parse_note,
    parse_verifier_key,
    sign_note,
    split_verifier_key,
    verifier_key_string,
    verify_note,
)
from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import SigningKey

KEY = SigningKey.from_seed(bytes(range(32)))
OTHER = SigningKey.from_seed(bytes(range(1, 33)))
NAME = "log.example/hotline"
TEXT = "log.example/hotline\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
VERIFIER = NoteVerifier(NAME, KEY.public)

# The example of golang.org/x/mod/sumdb/note's documentation: an independent implementation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()

# sign_note(TEXT, NAME, KEY) with KEY's seed 00 01 … 1f; Ed25519 is deterministic.
GOLDEN_NOTE = (
    TEXT + "\n\u2014 log.example/hotline l4XDuKkHIzzrz8YPoa5XN6nvbKBlOC7Rm/75r1o5FGa6gTfVAZWvG8iC"
    "xoWKySNFeXP0HM2JNBXf/EfV/o0O4Jq1Ywo=\n"
).encode()
# Its verifier key; note the "+" inside the base64 part.
GOLDEN_VKEY = "log.example/hotline+9785c3b8+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"


def sig_line(name: str, raw: bytes) -> bytes:
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n".encode()


def test_ed25519_key_id_hashes_name_newline_type_and_key() -> None:
    """The key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    expected = hashlib.sha256(NAME.encode() + b"\n\x01" + KEY.public.raw).digest()[:4]
    assert ed25519_key_id(NAME, KEY.public.raw) == expected
    assert VERIFIER.key_id == expected


def test_signed_note_matches_the_golden_bytes() -> None:
    """Signing a fixed text with a fixed seed gives the same bytes every time."""
    assert sign_note(TEXT, NAME, KEY) == GOLDEN_NOTE


def test_note_from_the_go_reference_verifies() -> None:
    """The Go sumdb/note documentation example parses and verifies under its verifier key."""
    note = verify_note(GO_NOTE, [parse_verifier_key(GO_VKEY)])
    assert note.text.startswith("If you think cryptography")
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert format_note(parse_note(GO_NOTE)) == GO_NOTE


def test_sign_then_verify_returns_the_text_and_the_signature() -> None:
    """A note signed by a known key verifies and yields its text and that signature."""
    note = verify_note(sign_note(TEXT, NAME, KEY), [VERIFIER])
    assert note.text == TEXT
    assert len(note.signatures) == 1
    assert note.signatures[0].key_id == VERIFIER.key_id


def test_text_ends_at_the_last_blank_line() -> None:
    """Blank lines inside the text belong to the text; only the last one separates."""
    text = "first\n\nsecond\n\n"
    data = sign_note(text, NAME, KEY)
    assert parse_note(data).text == text
    assert verify_note(data, [VERIFIER]).text == text


def test_parse_then_format_gives_back_the_same_bytes() -> None:
    """format_note inverts parse_note exactly."""
    data = sign_note(TEXT, NAME, KEY) + sig_line("other.example", b"\x01\x02\x03\x04sig")
    assert format_note(parse_note(data)) == data


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"),
        max_size=60,
    ),
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="+\x85"
        ),
        min_size=1,
        max_size=20,
    ),
    st.binary(min_size=1, max_size=80),
)
def test_any_valid_note_round_trips(body: str, name: str, signature: bytes) -> None:
    """Any text ending in a newline and any valid name round-trip through format and parse."""
    note = Note(body + "\n", (NoteSignature(name, b"\x00\x01\x02\x03", signature),))
    assert parse_note(format_note(note)) == note


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"text\n", "no blank line"),
        (b"text\n\n", "no signature lines"),
        (TEXT.encode() + b"\n" + sig_line(NAME, bytes(70))[:-1], "does not end with a newline"),
        (TEXT.encode() + b"\n-- name AAAAAAAAAA==\n", "em dash"),
        (TEXT.encode() + b"\n\xe2\x80\x94name AAAAAAAAAA==\n", "em dash"),
        (TEXT.encode() + b"\n\xe2\x80\x94 name  AAAAAAAAAA==\n", "not '\u2014 <name>"),
        (TEXT.encode() + b"\n\xe2\x80\x94 name\n", "not '\u2014 <name>"),
        (TEXT.encode() + b"\n\xe2\x80\x94 name AAAAAAAAAA\n", "canonical"),
        (TEXT.encode() + b"\n\xe2\x80\x94 name AAAAAAAAAB==\n", "canonical"),
        (TEXT.encode() + b"\n\xe2\x80\x94 name AAAA!AAAAA==\n", "canonical"),
        (TEXT.encode() + b"\n" + sig_line(NAME, b"\x00\x01\x02\x03"), "at least 5"),
        (TEXT.encode() + b"\n" + sig_line("a+b", bytes(70)), "space or '\\+'"),
        (TEXT.encode() + b"\n" + sig_line("a\u00a0b", bytes(70)), "space or '\\+'"),
        (TEXT.encode() + b"\n\xe2\x80\x94  AAAAAAAAAA==\n", "must not be empty"),
        (b"bad \xff utf-8\n\n" + sig_line(NAME, bytes(70)), "UTF-8"),
        (b"carriage\r\n\n" + sig_line(NAME, bytes(70)), "control character"),
        (b"tab\there\n\n" + sig_line(NAME, bytes(70)), "control character"),
        (b"nul\x00\n\n" + sig_line(NAME, bytes(70)), "control character"),
    ],
)
def test_malformed_notes_are_refused(data: bytes, reason: str) -> None:
    """Each syntax rule of the signed-note format is enforced with its own sentence."""
    with pytest.raises(NoteError, match=reason):
        parse_note(data)


def test_text_must_end_with_a_newline_when_signing() -> None:
    """Signing text without its final newline is the caller's mistake."""
    with pytest.raises(UsageError, match="end with a newline"):
        sign_note("no newline", NAME, KEY)
    with pytest.raises(UsageError, match="control character"):
        sign_note("bell\x07\n", NAME, KEY)
    with pytest.raises(UsageError, match="not valid UTF-8"):
        sign_note("lone \udc80 surrogate\n", NAME, KEY)


@pytest.mark.parametrize(
    "name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name", "bell\x07", "lone\ud800"]
)
def test_invalid_key_names_are_refused_for_signing(name: str) -> None:
    """Key names must be non-empty and hold no Unicode space nor '+'."""
    with pytest.raises(UsageError):
        sign_note(TEXT, name, KEY)


def test_signatures_by_unknown_keys_are_ignored() -> None:
    """Signatures whose name or key ID (but not both) match a known key are skipped."""
    data = sign_note(TEXT, NAME, KEY)
    same_name = sig_line(NAME, ed25519_key_id(NAME, OTHER.public.raw) + bytes(64))
    same_id = sig_line("other.example", VERIFIER.key_id + bytes(64))
    stranger = sig_line("stranger.example", b"\x09\x09\x09\x09" + b"x" * 64)
    note = verify_note(data + same_name + same_id + stranger, [VERIFIER])
    assert [(s.name, s.key_id) for s in note.signatures] == [(NAME, VERIFIER.key_id)]


def test_a_failing_signature_by_a_known_key_rejects_the_note() -> None:
    """A bad signature by a known key refuses the note even if another known key signed."""
    good = sign_note(TEXT, NAME, KEY)
    second = NoteVerifier("second.example", OTHER.public)
    forged = sig_line(second.name, second.key_id + bytes(64))
    pattern = r"signature by second\.example \(key ID [0-9a-f]{8}\) does not verify"
    with pytest.raises(NoteError, match=pattern):
        verify_note(good + forged, [VERIFIER, second])


def test_a_note_with_a_flipped_text_byte_fails() -> None:
    """Changing the signed text makes the known key's signature fail."""
    data = bytearray(sign_note(TEXT, NAME, KEY))
    data[20] ^= 1
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(bytes(data), [VERIFIER])


def test_a_note_without_a_known_signature_is_rejected() -> None:
    """A note signed only by keys the verifier does not know is refused."""
    data = sign_note(TEXT, "other.example", OTHER)
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(data, [VERIFIER])


def test_sixteen_signatures_are_accepted() -> None:
    """A note with 15 unknown signatures and one known one verifies."""
    data = sign_note(TEXT, NAME, KEY)
    extra = b"".join(sig_line(f"w{i}.example", bytes(68)) for i in range(15))
    assert len(parse_note(data + extra).signatures) == 16
    assert verify_note(data + extra, [VERIFIER]).text == TEXT


def test_sixteen_known_signatures_all_verify() -> None:
    """Sixteen known keys each signing the note are all returned."""
    keys = [SigningKey.from_seed(bytes([i]) * 32) for i in range(16)]
    data = sign_note(TEXT, "k0.example", keys[0])
    for i, key in enumerate(keys[1:], start=1):
        name = f"k{i}.example"
        data += sig_line(name, ed25519_key_id(name, key.public.raw) + key.sign(TEXT.encode()))
    verifiers = [NoteVerifier(f"k{i}.example", k.public) for i, k in enumerate(keys)]
    assert len(verify_note(data, verifiers).signatures) == 16


def test_more_than_the_maximum_number_of_signatures_is_refused() -> None:
    """A note with 100 signatures parses; one with 101 is refused."""
    data = sign_note(TEXT, NAME, KEY)
    extra = b"".join(sig_line(f"w{i}.example", bytes(68)) for i in range(MAX_SIGNATURES))
    parse_note(data + extra[: -len(sig_line("w99.example", bytes(68)))])
    with pytest.raises(NoteError, match=f"101 signatures; at most {MAX_SIGNATURES}"):
        parse_note(data + extra)


def test_an_oversized_note_is_refused() -> None:
    """A note larger than MAX_NOTE_SIZE is refused before it is decoded."""
    with pytest.raises(NoteError, match="more than the"):
        parse_note(b"x" * (MAX_NOTE_SIZE + 1))


def test_a_repeated_signature_line_is_returned_once() -> None:
    """The same signature line twice counts as one verified signature."""
    data = sign_note(TEXT, NAME, KEY)
    line = data[len(TEXT) + 1 :]
    assert len(verify_note(data + line, [VERIFIER]).signatures) == 1


def test_conflicting_verifiers_are_the_callers_mistake() -> None:
    """Two different keys under one (name, key ID) pair cannot both be trusted."""

    class Fake:
        name = NAME
        key_id = VERIFIER.key_id

        def verify(self, text: bytes, signature: bytes) -> bool:
            return True

    with pytest.raises(UsageError, match="share the name"):
        verify_note(sign_note(TEXT, NAME, KEY), [VERIFIER, Fake()])
    with pytest.raises(UsageError, match="at least one known key"):
        verify_note(sign_note(TEXT, NAME, KEY), [])


def test_verifier_key_string_round_trips() -> None:
    """A verifier key written by verifier_key_string parses back to the same verifier."""
    vkey = verifier_key_string(NAME, 0x01, KEY.public.raw)
    assert vkey == GOLDEN_VKEY
    name, hex_id, encoded = vkey.split("+", 2)
    assert name == NAME
    assert hex_id == VERIFIER.key_id.hex()
    assert base64.b64decode(encoded) == b"\x01" + KEY.public.raw
    assert parse_verifier_key(vkey) == VERIFIER
    assert split_verifier_key(vkey) == (NAME, 0x01, KEY.public.raw)


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        ("only+two", "<name>\\+<hex key ID>"),
        ("a+b+c+d", "8 lowercase hex"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "must not be empty"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "give c74f20a3"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "canonical"),
        ("Peter+c74f20a3+AQ==", "canonical"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str, reason: str) -> None:
    """Verifier keys with a bad shape, key ID or key material are refused."""
    with pytest.raises(NoteError, match=reason):
        parse_verifier_key(vkey)


def test_verifier_keys_of_other_types_are_not_ed25519_note_keys() -> None:
    """A cosignature (type 0x04) verifier key is not accepted as an Ed25519 note key."""
    vkey = verifier_key_string(NAME, 0x04, KEY.public.raw)
    with pytest.raises(NoteError, match="type 0x04, expected Ed25519"):
        parse_verifier_key(vkey)
    short = verifier_key_string(NAME, 0x01, KEY.public.raw[:31])
    with pytest.raises(NoteError, match="31 key bytes, expected 32"):
        parse_verifier_key(short)


def test_format_refuses_a_note_without_signatures() -> None:
    """A note needs at least one signature to be written."""
    with pytest.raises(UsageError, match="at least one signature"):
        format_note(Note(TEXT))


def test_format_refuses_a_note_too_large_to_parse_back() -> None:
    """format_note never writes a note larger than parse_note accepts."""
    sig = NoteSignature(NAME, VERIFIER.key_id, bytes(64))
    with pytest.raises(UsageError, match="more than the"):
        format_note(Note("x" * MAX_NOTE_SIZE + "\n", (sig,)))
