"""The temporary ``busy`` rejection: retry_after_ms on the wire, and only when it is set."""

from __future__ import annotations

import msgpack

from hotline.errors import RejectCode
from hotline.protocol.session import RejectedNotice, decode_control, encode_control


def test_a_busy_notice_carries_its_retry_after_and_decodes_back() -> None:
    """retry_after_ms travels as an integer field of the rejected map."""
    notice = RejectedNotice(b"\x01" * 16, RejectCode.BUSY.value, "cannot log now", "", 1000)
    data = encode_control(notice)
    assert msgpack.unpackb(data)["retry_after_ms"] == 1000
    assert decode_control(data) == notice


def test_other_rejections_keep_their_old_bytes_without_retry_after() -> None:
    """A rejection without retry-after has no such field, and a map without it decodes to 0."""
    notice = RejectedNotice(b"", RejectCode.SCHEMA.value, "must be int", "seq")
    fields = msgpack.unpackb(encode_control(notice))
    assert "retry_after_ms" not in fields
    assert sorted(fields) == ["code", "path", "ref", "sentence", "t"]
    decoded = decode_control(encode_control(notice))
    assert isinstance(decoded, RejectedNotice)
    assert decoded.retry_after_ms == 0
