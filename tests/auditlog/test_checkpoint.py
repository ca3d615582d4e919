"""C2SP tlog-checkpoint: text form, strict parsing, signing and opening."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.auditlog.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    checkpoint_cosignatures,
    open_checkpoint,
    parse_checkpoint_text,
    sign_checkpoint,
)
from hotline.auditlog.cosignature import add_cosignature, cosign
from hotline.auditlog.merkle import EMPTY_ROOT
from hotline.auditlog.note import parse_note, sign_note
from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import SigningKey

LOG_KEY = SigningKey.from_seed(bytes(range(32)))
WITNESS_KEY = SigningKey.from_seed(bytes(range(100, 132)))
ORIGIN = "log.example/hotline"
ROOT = hashlib.sha256(b"root").digest()
CHECKPOINT = Checkpoint(ORIGIN, 1234, ROOT)

# sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY): Ed25519 is deterministic.
GOLDEN = (
    "log.example/hotline\n1234\nSBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=\n\n"
    "\u2014 log.example/hotline l4XDuJvnrLVxJfqvDy9Yxr9k4wHWNJTtXEeIX/vfi3HhiauTEAKnpQfxFa7w"
    "JWQhNf60OqL0CxNsie7YOYA35Cr1jww=\n"
).encode()

# The example of the C2SP tlog-cosignature specification, signatures and all.
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URY"
    "N7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
).encode()


def test_text_is_origin_size_and_base64_root() -> None:
    """The checkpoint text is three newline-terminated lines: origin, decimal size, base64 root."""
    expected = f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert CHECKPOINT.text() == expected


def test_empty_tree_has_size_zero() -> None:
    """The empty tree's size is written as a single 0."""
    cp = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert cp.text().split("\n")[1] == "0"
    assert parse_checkpoint_text(cp.text()) == cp


def test_extension_lines_follow_the_root() -> None:
    """Extension lines come after the root line and parse back."""
    cp = Checkpoint(ORIGIN, 7, ROOT, ("ext one", "ext two"))
    assert cp.text().endswith("\next one\next two\n")
    assert parse_checkpoint_text(cp.text()) == cp


def test_the_spec_example_parses() -> None:
    """The C2SP example checkpoint parses as a note with two signatures and a checkpoint."""
    note = parse_note(SPEC_EXAMPLE)
    cp = parse_checkpoint_text(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert [s.name for s in note.signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
        max_size=3,
    ),
)
def test_any_checkpoint_round_trips(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    """parse_checkpoint_text inverts Checkpoint.text for every valid checkpoint."""
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert parse_checkpoint_text(cp.text()) == cp


R = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{ORIGIN}\n1234\n{R}", "end with a newline"),
        (f"{ORIGIN}\n1234\n", "2 lines, expected at least 3"),
        (f"\n1234\n{R}\n", "origin must not be empty"),
        (f"{ORIGIN}\n01234\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n00\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n+1234\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n-1\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n 1234\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n1_234\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n\u0661\u0662\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n18446744073709551616\n{R}\n", "outside 0 to 2\\^64-1"),
        (f"{ORIGIN}\n123456789012345678901\n{R}\n", "without leading zeros"),
        (f"{ORIGIN}\n1234\n{R[:-1]}\n", "not canonical"),
        (f"{ORIGIN}\n1234\n{R[:-2]}J=\n", "not canonical"),
        (f"{ORIGIN}\n1234\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes, expected 32"),
        (f"{ORIGIN}\n1234\n{base64.b64encode(ROOT + b'x').decode()}\n", "33 bytes"),
        (f"{ORIGIN}\n1234\n{R}\n\n", "extension line 1 is empty"),
        (f"{ORIGIN}\n1234\n{R}\nok\n\n", "extension line 2 is empty"),
    ],
)
def test_malformed_checkpoint_text_is_refused(text: str, reason: str) -> None:
    """Each rule of the checkpoint text is enforced with its own sentence."""
    with pytest.raises(NoteError, match=reason):
        parse_checkpoint_text(text)


def test_the_largest_tree_size_parses() -> None:
    """A size of 2^64-1 is accepted."""
    cp = parse_checkpoint_text(f"{ORIGIN}\n{MAX_TREE_SIZE}\n{R}\n")
    assert cp.size == MAX_TREE_SIZE


def test_building_an_invalid_checkpoint_is_the_callers_mistake() -> None:
    """The Checkpoint constructor refuses impossible values with UsageError."""
    with pytest.raises(UsageError, match="origin must not be empty"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(UsageError, match="control character"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(UsageError, match="outside"):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(UsageError, match="root hash is 3 bytes"):
        Checkpoint(ORIGIN, 1, b"abc")
    with pytest.raises(UsageError, match="extension line 1 is empty"):
        Checkpoint(ORIGIN, 1, ROOT, ("",))


def test_signed_checkpoint_matches_the_golden_bytes() -> None:
    """Signing a fixed checkpoint with a fixed seed gives the same bytes every time."""
    assert sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY) == GOLDEN


def test_open_returns_the_checkpoint_the_log_signed() -> None:
    """Opening a checkpoint signed by the log's key returns it."""
    data = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    assert open_checkpoint(data, ORIGIN, LOG_KEY.public) == CHECKPOINT


def test_open_refuses_a_checkpoint_from_another_key() -> None:
    """A checkpoint signed by another key under the log's name is not opened."""
    data = sign_checkpoint(CHECKPOINT, ORIGIN, WITNESS_KEY)
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_checkpoint(data, ORIGIN, LOG_KEY.public)


def test_open_refuses_an_altered_checkpoint() -> None:
    """Changing the size after signing breaks the log's signature."""
    data = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY).replace(b"\n1234\n", b"\n1235\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(data, ORIGIN, LOG_KEY.public)


def test_open_refuses_a_checkpoint_for_another_origin() -> None:
    """A checkpoint whose origin line differs from the expected origin is refused."""
    other = Checkpoint("other.example/log", 1234, ROOT)
    data = sign_checkpoint(other, ORIGIN, LOG_KEY)
    with pytest.raises(NoteError, match=r"origin is 'other\.example/log', expected"):
        open_checkpoint(data, ORIGIN, LOG_KEY.public)


def test_open_refuses_a_signed_note_that_is_not_a_checkpoint() -> None:
    """A validly signed note whose text is not a checkpoint is refused."""
    data = sign_note("hello\n", ORIGIN, LOG_KEY)
    with pytest.raises(NoteError, match="1 lines, expected at least 3"):
        open_checkpoint(data, ORIGIN, LOG_KEY.public)


def test_open_accepts_a_key_name_other_than_the_origin() -> None:
    """A log key known under a name other than the origin is looked up by that name."""
    data = sign_checkpoint(CHECKPOINT, "key.example/k1", LOG_KEY)
    assert open_checkpoint(data, ORIGIN, LOG_KEY.public, key_name="key.example/k1") == CHECKPOINT
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_checkpoint(data, ORIGIN, LOG_KEY.public)


def test_cosignatures_are_the_other_signature_lines() -> None:
    """checkpoint_cosignatures lists every signature line but the log's own."""
    data = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    witness = cosign(CHECKPOINT.text(), "witness.example/w1", WITNESS_KEY, 1_700_000_000)
    cosigned = add_cosignature(data, witness)
    assert checkpoint_cosignatures(cosigned, ORIGIN, LOG_KEY.public) == (witness,)
    assert checkpoint_cosignatures(data, ORIGIN, LOG_KEY.public) == ()
    assert open_checkpoint(cosigned, ORIGIN, LOG_KEY.public) == CHECKPOINT


def test_cosignatures_of_an_unverified_checkpoint_are_not_returned() -> None:
    """checkpoint_cosignatures refuses a checkpoint the log did not sign."""
    forged = sign_checkpoint(CHECKPOINT, ORIGIN, WITNESS_KEY)
    witness = cosign(CHECKPOINT.text(), "witness.example/w1", WITNESS_KEY, 1_700_000_000)
    with pytest.raises(NoteError, match="no signature by a known key"):
        checkpoint_cosignatures(add_cosignature(forged, witness), ORIGIN, LOG_KEY.public)
