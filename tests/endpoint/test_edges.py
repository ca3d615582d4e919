"""Small edge helpers: the relay's HTTP base, proof decoding, reconnection delays."""

from __future__ import annotations

import base64
import random

import pytest

from hotline.endpoint.connection import Backoff
from hotline.endpoint.relay_http import RelayUnavailable, http_base, parse_consistency


@pytest.mark.parametrize(
    ("ws_url", "base"),
    [
        ("ws://127.0.0.1:8700/v1/ws", "http://127.0.0.1:8700"),
        ("wss://relay.example/v1/ws", "https://relay.example"),
        ("ws://relay.example/hotline/v1/ws/", "http://relay.example/hotline"),
    ],
)
def test_http_base_comes_from_the_websocket_url(ws_url: str, base: str) -> None:
    """ws becomes http, wss becomes https, and /v1/ws is dropped."""
    assert http_base(ws_url) == base


def test_consistency_json_is_decoded() -> None:
    """The relay's proof JSON becomes sizes, roots and hashes (standard base64)."""
    h = base64.b64encode(b"\x01" * 32).decode()
    proof = parse_consistency(
        {"old_size": 2, "new_size": 5, "old_root": h, "new_root": h, "proof": [h, h]}
    )
    assert (proof.old_size, proof.new_size) == (2, 5)
    assert proof.proof == (b"\x01" * 32, b"\x01" * 32)


@pytest.mark.parametrize(
    "data",
    [[], {"old_size": 2}, {"old_size": "2", "new_size": 5, "old_root": "", "new_root": "",
                           "proof": []},
     {"old_size": 2, "new_size": 5, "old_root": "!!", "new_root": "", "proof": []}],
)
def test_malformed_consistency_json_is_refused(data: object) -> None:
    """Anything but the documented shape is RelayUnavailable, never a crash."""
    with pytest.raises(RelayUnavailable):
        parse_consistency(data)


def test_backoff_doubles_to_its_ceiling_with_jitter() -> None:
    """Delays double from 0.2 s to at most 5 s, each drawn between half and all of it."""
    delays = Backoff(0.2, 5.0).delays(random.Random(1))
    nominal = [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    for expected in nominal:
        assert expected / 2 <= delays.next() <= expected
    delays.reset()
    assert delays.next() <= 0.2
