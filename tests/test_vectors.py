"""Golden envelope vectors: every case gets its verdict from ``open_envelope``, byte-stable."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Final

import pytest

from hotline.errors import RejectCode, Rejected
from hotline.network import Network, parse_network
from hotline.protocol.envelope import open_envelope
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.vocab import BodyType
from tests.vectors import generate

VECTORS: Final = Path(__file__).resolve().parent / "vectors"
CASES: Final[list[dict[str, Any]]] = json.loads(
    (VECTORS / generate.ENVELOPES_FILE).read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def network() -> Network:
    text = (VECTORS / generate.NETWORK_FILE).read_text(encoding="utf-8")
    return parse_network(tomllib.loads(text), source=generate.NETWORK_FILE)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_gets_its_verdict(case: dict[str, Any], network: Network) -> None:
    """Each golden envelope opens (with its JSON view) or is refused with its code and path."""
    frame = bytes.fromhex(case["envelope_hex"])
    if case["expect"] == "ok":
        envelope = open_envelope(frame, network, max_size=network.limits.max_frame_bytes)
        assert body_to_json(envelope.body) == case["body_json"]
        return
    with pytest.raises(Rejected) as caught:
        open_envelope(frame, network, max_size=network.limits.max_frame_bytes)
    assert caught.value.code == case["expect"]
    assert caught.value.path == case.get("path", "")


def test_generator_reproduces_the_committed_files() -> None:
    """Running the generator again gives the committed files byte for byte."""
    for name, text in generate.render().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, f"{name} is stale"


def test_every_body_type_has_a_valid_vector() -> None:
    """Every body type and every receipt stage has at least one envelope that opens."""
    ok = [c["body_json"] for c in CASES if c["expect"] == "ok"]
    assert {b["t"] for b in ok} == {t.value for t in BodyType}
    assert {b["stage"] for b in ok if b["t"] == "receipt"} == {
        "delivered",
        "acknowledged",
        "rejected",
    }


def test_every_envelope_code_has_a_vector() -> None:
    """Every code an envelope verifier can give appears among the expectations."""
    envelope_codes = {
        RejectCode.TOO_LARGE,
        RejectCode.BAD_FRAME,
        RejectCode.BAD_SIGNATURE,
        RejectCode.UNKNOWN_SENDER,
        RejectCode.SCHEMA,
    }
    assert {c["expect"] for c in CASES} == {"ok", *envelope_codes}


def test_schema_cases_name_a_path_and_others_do_not() -> None:
    """A schema case names the field at fault; no other case carries a path."""
    for case in CASES:
        assert ("path" in case) == (case["expect"] == RejectCode.SCHEMA), case["name"]


def test_size_cases_sit_on_the_limit(network: Network) -> None:
    """The size vectors are exactly the limit (accepted) and one byte over (refused)."""
    sizes = {c["name"]: len(c["envelope_hex"]) // 2 for c in CASES}
    limit = network.limits.max_frame_bytes
    assert (sizes["frame_at_limit"], sizes["too_large"]) == (limit, limit + 1)


def test_vector_keys_come_from_the_documented_seeds(network: Network) -> None:
    """Each party's key in the vector network is derived from its documented seed."""
    for party in ("BY", "LT", "LV", "EE", "PL", "relay"):
        keys = network.keys_of(party)
        assert keys is not None
        assert keys[0] == generate.key_of(party).public
    assert generate.seed_of("BY") == bytes(range(32))
    assert network.keys_of("XX") is None
