"""Fuzzed decoders: any input is read or refused with the module's own error, never a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.auditlog.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint_text,
    sign_checkpoint,
)
from hotline.auditlog.cosignature import (
    add_cosignature,
    cosign,
    cosignature_timestamp,
    parse_cosignature_verifier_key,
)
from hotline.auditlog.note import parse_note, parse_verifier_key
from hotline.auditlog.tiles import decode_entry_bundle, parse_tile_path
from hotline.errors import AuditError, RejectCode, Rejected, UsageError
from hotline.protocol.bodies import Body
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.session import decode_control, encode_control
from tests.factories import make_network
from tests.protocol.strategies import bodies

NET = make_network()
CODES = {code.value for code in RejectCode}
FUZZ = settings(max_examples=150, deadline=None)


def _pack(fields: Mapping[str, object]) -> bytes:
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out)


def _open(frame: bytes) -> None:
    try:
        open_envelope(frame, NET.network, max_size=NET.network.limits.max_frame_bytes)
    except Rejected as exc:
        assert exc.code in CODES  # noqa: PT017 - the code of whatever was refused


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_refused_with_a_known_code(frame: bytes) -> None:
    """Random bytes never raise anything but Rejected with a protocol code."""
    _open(frame)


@FUZZ
@given(bodies, st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6),
       st.integers(0, 64))
def test_mutated_valid_frames_are_refused_with_a_known_code(
    body: Body, edits: list[tuple[int, int]], cut: int
) -> None:
    """Flipped bytes and truncations of a signed frame only ever give Rejected."""
    key = NET.keys["BY"]
    frame = seal(replace(body, sender="BY", kid=key.public.kid), key)
    _open(_mutate(frame, edits))
    _open(frame[: max(0, len(frame) - cut)])


@FUZZ
@given(st.one_of(st.binary(max_size=256),
                 st.dictionaries(st.sampled_from(["t", "id", "sig", "since", "nonce", "line",
                                                  "frame", "index", "note", "x"]),
                                 st.one_of(st.none(), st.booleans(),
                                           st.integers(-(2**63), 2**64 - 1),
                                           st.text(max_size=8), st.binary(max_size=8)),
                                 max_size=5).map(_pack)))
def test_control_messages_decode_or_are_refused(data: bytes) -> None:
    """decode_control takes any bytes to a control message or Rejected(bad_frame/schema)."""
    try:
        control = decode_control(data)
    except Rejected as exc:
        assert exc.code in ("bad_frame", "schema")  # noqa: PT017 - either refusal is fine
    else:
        assert decode_control(encode_control(control)) == control


@FUZZ
@given(st.one_of(st.binary(max_size=400),
                 st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_signed_notes_parse_or_are_refused(data: bytes) -> None:
    """parse_note and the checkpoint reader only raise NoteError (an AuditError)."""
    with contextlib.suppress(AuditError):
        parse_note(data)
    with contextlib.suppress(AuditError):
        open_checkpoint(data, "hotline.example/test", [NET.keys["relay"].public])


@FUZZ
@given(st.text(max_size=200))
def test_checkpoint_texts_and_verifier_keys_parse_or_are_refused(text: str) -> None:
    """Checkpoint text and verifier keys parse or raise AuditError, nothing else."""
    for parse in (parse_checkpoint_text, parse_verifier_key, parse_cosignature_verifier_key):
        with contextlib.suppress(AuditError):
            parse(text)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1 << 12), st.integers(0, 255)), max_size=6))
def test_mutated_cosigned_checkpoints_are_refused_or_read(edits: list[tuple[int, int]]) -> None:
    """A cosigned checkpoint with bytes changed parses, or is refused with an AuditError."""
    relay = NET.keys["relay"]
    origin = "hotline.example/test"
    note = sign_checkpoint(Checkpoint(origin, 3, b"\x01" * 32), origin, relay)
    text = parse_note(note).text
    line = cosign(text, "BY", NET.keys["BY"], 1_764_000_000)
    mutated = _mutate(add_cosignature(note, line), edits)
    try:
        for signature in parse_note(mutated).signatures:
            with contextlib.suppress(AuditError):
                cosignature_timestamp(signature)
        open_checkpoint(mutated, "hotline.example/test", [relay.public])
    except AuditError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=120),
                 st.lists(st.sampled_from(["tile", "entries", "0", "1", "63", "64", "x001",
                                           "000", "001.p", "255", "256", "..", "%2e", "",
                                           "x000", "007"]), max_size=7).map("/".join)))
def test_tile_paths_parse_or_are_refused(path: str) -> None:
    """A tile path is read to a canonical TileRef, or refused with an AuditError/UsageError."""
    try:
        ref = parse_tile_path(path)
    except (AuditError, UsageError):
        return
    assert ref.path() == path


@FUZZ
@given(st.binary(max_size=600), st.one_of(st.none(), st.integers(0, 300)))
def test_entry_bundles_decode_or_are_refused(data: bytes, width: int | None) -> None:
    """An entry bundle decodes, or is refused with an AuditError."""
    with contextlib.suppress(AuditError):
        decode_entry_bundle(data, width)


