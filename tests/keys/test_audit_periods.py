"""``hotline audit verify`` judges every logged signature against its key's period."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hotline.auditlog.bundle import Bundle
from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.verify import verify_bundle
from hotline.errors import VerificationFailed
from hotline.protocol.envelope import seal
from hotline.protocol.keys import SigningKey
from hotline.protocol.timetext import format_utc_ms
from tests.auditlog.logs import export, write_log
from tests.endpoint.builders import Author
from tests.factories import make_network
from tests.keys.helpers import T_EXPIRE, T_ROTATE, rotate

NET = make_network(("BY", "LT"))
LT = rotate(NET, "LT")


def _entries(*signed: tuple[SigningKey, int]) -> list[bytes]:
    """One log entry per (key, ts): a warning from LT to BY signed with that key."""
    author, out = Author(LT.after), []
    for seq, (key, ts) in enumerate(signed, 1):
        body = replace(author.warning("LT", ("BY",), ts=ts), seq=seq, kid=key.public.kid)
        out.append(encode_envelope_entry(ts, seal(body, key)))
    return out


def _bundle(tmp_path: Path, entries: list[bytes]) -> Bundle:
    write_log(tmp_path / "relay", LT.after, entries, concurrency=1)
    export(tmp_path / "relay", LT.after, tmp_path / "bundle")
    return Bundle(tmp_path / "bundle")


@pytest.mark.parametrize("full_schema", [False, True])
def test_old_and_new_keys_verify_within_their_periods(tmp_path: Path, full_schema: bool) -> None:
    """Old key before and during the overlap, new key after the rotation: all verify."""
    entries = _entries(
        (LT.old, T_ROTATE - 86_400_000), (LT.old, T_EXPIRE - 1), (LT.new, T_ROTATE),
        (LT.new, T_EXPIRE + 86_400_000),
    )
    report = verify_bundle(_bundle(tmp_path, entries), workers=1, full_schema=full_schema)
    assert report.envelopes == 4


@pytest.mark.parametrize("full_schema", [False, True])
def test_a_signature_outside_its_key_period_is_named_by_index(
    tmp_path: Path, full_schema: bool
) -> None:
    """An entry signed with the old key after its not_after fails, naming the entry and key."""
    entries = _entries((LT.old, T_ROTATE), (LT.new, T_ROTATE + 1), (LT.old, T_EXPIRE))
    with pytest.raises(VerificationFailed) as caught:
        verify_bundle(_bundle(tmp_path, entries), workers=1, full_schema=full_schema)
    assert caught.value.index == 2
    assert f"key {LT.old.public.kid.hex()} of LT expired at {format_utc_ms(T_EXPIRE)}" in str(
        caught.value
    )
