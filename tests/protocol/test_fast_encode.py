"""The short way to encode a relay's ``accepted`` receipt gives the careful way's bytes or none."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import Rejected
from hotline.protocol.bodies import AcceptedBody, RelayCheckpoint, SeenCheckpoint
from hotline.protocol.schema import _accepted_bytes, _encode_checked, encode_body
from tests.protocol import strategies as s


class _Bytes(bytes):
    pass


class _Str(str):
    __slots__ = ()


class _Int(enum.IntEnum):
    SEVEN = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class _Subclass(AcceptedBody):
    pass


ROOT = bytes(32)
ODD: list[Any] = [
    True, False, _Int.SEVEN, -1, 0, 1, (1 << 48) - 1, 1 << 48, (1 << 63) - 1, 1 << 63, 1 << 64,
    -(1 << 63), 1.5, 7.0, "", "LT", "a b", "relay", "x" * 33, "\u202e", b"", b"\x00" * 8,
    b"\x00" * 16, b"\x00" * 32, bytes(range(16)), None,
]


def _twisted(value: Any) -> st.SearchStrategy[Any]:
    """Values near a valid one: the same content in another type or a subclass, or another."""
    near: list[Any] = [value]
    if isinstance(value, bytes):
        near += [_Bytes(value), bytearray(value), value[:-1], value + b"\x00"]
    if isinstance(value, str):
        near += [_Str(value), value.encode()]
    if isinstance(value, int):
        near += [float(value), value + (1 << 63), -value - 1]
    return st.sampled_from(near) | st.sampled_from(ODD) | st.binary(max_size=33) | st.integers()


@st.composite
def wild_accepteds(draw: st.DrawFn) -> AcceptedBody:
    """A valid accepted body with one to three fields twisted, and perhaps a cp or cps."""
    body = draw(s.accepteds())
    names = [f.name for f in fields(body) if f.name not in ("cp", "cps")]
    changes = {name: draw(_twisted(getattr(body, name)))
               for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))}
    changes["cp"] = draw(st.sampled_from([None, None, None, SeenCheckpoint(size=1, root=ROOT)]))
    changes["cps"] = draw(st.sampled_from(
        [None, None, None, (RelayCheckpoint(relay="by", size=1, root=ROOT),)]))
    return replace(body, **changes)


def _outcome(encode: Callable[[AcceptedBody], bytes], body: AcceptedBody) -> bytes | str:
    """The bytes, or the name of the error (the careful way raises Rejected or packb's own)."""
    try:
        return encode(body)
    except (Rejected, ValueError, TypeError, OverflowError) as exc:
        return type(exc).__name__


def _careful(body: AcceptedBody) -> bytes | str:
    return _outcome(_encode_checked, body)


@settings(max_examples=500)
@given(s.accepteds())
def test_a_valid_accepted_body_takes_the_short_way_to_the_same_bytes(body: AcceptedBody) -> None:
    """Every valid accepted receipt is encoded without reading it back, byte for byte as before."""
    fast = _accepted_bytes(body)
    assert fast is not None
    assert fast == _careful(body) == encode_body(body)


@settings(max_examples=1500)
@given(wild_accepteds())
def test_the_short_way_never_passes_what_the_careful_way_refuses(body: AcceptedBody) -> None:
    """Whatever its fields hold, the short way gives the careful way's bytes or leaves it to it."""
    fast = _accepted_bytes(body)
    careful = _careful(body)
    if fast is not None:
        assert fast == careful
    assert _outcome(encode_body, body) == careful


@given(s.accepteds())
def test_a_subclass_of_accepted_body_goes_the_careful_way(body: AcceptedBody) -> None:
    """A subclass is not an accepted body on the wire: refused as before, never encoded."""
    odd = _Subclass(**{f.name: getattr(body, f.name) for f in fields(body)})
    assert _accepted_bytes(odd) is None
    assert isinstance(_careful(odd), str)
    assert _accepted_bytes(replace(body, cp=SeenCheckpoint(size=1, root=bytes(32)))) is None

