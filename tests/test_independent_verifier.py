"""An envelope verifier written from docs/protocol.md alone agrees with hotline and its CLI.

:func:`independent_verify` uses nothing but ``msgpack``, ``hashlib``, ``base64``, ``tomllib``
and ``cryptography``: if the document is precise enough to build a compatible client, this
verifier accepts what hotline signs and refuses what hotline refuses, up to the signature
(section 4, steps 1 to 9; the body schema of step 10 is not re-implemented here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any, Final

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ROOT: Final = Path(__file__).resolve().parent.parent
DOC: Final = ROOT / "docs" / "protocol.md"
VECTORS: Final = ROOT / "tests" / "vectors"

# ----------------------------------------------------------------------------- the verifier

TAG: Final = b"hotline/v1/msg\x00"
DEFAULT_MAX_FRAME: Final = 61440


class IndependentRejection(Exception):
    """The envelope is refused with ``code`` (a protocol rejection code)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code


def _unique_str_keys(pairs: list[tuple[object, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise IndependentRejection("bad_frame", "a map key is not a str")
        if key in out:
            raise IndependentRejection("bad_frame", f"the key {key!r} repeats")
        out[key] = value
    return out


def _body_map(body: bytes) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=False, object_pairs_hook=_unique_str_keys
        )
    except IndependentRejection:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise IndependentRejection("bad_frame", "the body is not one MessagePack map") from exc
    if not isinstance(value, dict):
        raise IndependentRejection("bad_frame", "the body is not a map")
    return value


def _public_key_of(config: dict[str, Any], sender: str) -> bytes:
    relay = config["relay"]
    if sender == relay.get("id", "relay"):
        text = relay["public_key"]
    elif sender in config.get("endpoints", {}):
        text = config["endpoints"][sender]["public_key"]
    else:
        raise IndependentRejection("unknown_sender", f"{sender!r} is not in network.toml")
    raw = base64.b64decode(text, validate=True)
    assert len(raw) == 32
    return raw


def independent_verify(frame: bytes, network_toml: str) -> dict[str, Any]:
    """The body map of a valid envelope, or IndependentRejection with the doc's code."""
    config = tomllib.loads(network_toml)
    max_size = config.get("limits", {}).get("max_frame_bytes", DEFAULT_MAX_FRAME)
    if len(frame) > max_size:
        raise IndependentRejection("too_large", f"{len(frame)} bytes")
    try:
        outer = msgpack.unpackb(frame, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise IndependentRejection("bad_frame", "not one MessagePack value") from exc
    if not isinstance(outer, list) or len(outer) != 3:
        raise IndependentRejection("bad_frame", "not an array of 3")
    version, body, signature = outer
    if type(version) is not int or version != 1:
        raise IndependentRejection("bad_frame", "the version is not the integer 1")
    if not isinstance(body, bytes):
        raise IndependentRejection("bad_frame", "the body is not bin")
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise IndependentRejection("bad_frame", "the signature is not 64 bytes of bin")
    fields = _body_map(body)
    sender = fields.get("from")
    if not isinstance(sender, str):
        raise IndependentRejection("schema", "from")
    kid = fields.get("kid")
    if not isinstance(kid, bytes) or len(kid) != 8:
        raise IndependentRejection("schema", "kid")
    public = _public_key_of(config, sender)
    if hashlib.sha256(public).digest()[:8] != kid:
        raise IndependentRejection("bad_signature", "kid is not the sender's key id")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, TAG + body)
    except InvalidSignature:
        raise IndependentRejection("bad_signature", "the signature does not verify") from None
    return fields


# ----------------------------------------------------------------------------- helpers

WARNING_BODY: Final = {
    "t": "warning",
    "to": ["LT", "PL"],
    "status": "exercise",
    "precedence": "flash",
    "incident": "019ab697-e800-7000-8000-000000000064",
    "expires": 4102444800000,
    "track": {
        "lat": 54.3512,
        "lon": 25.9041,
        "observed_at": 1764000000000,
        "object": "uav",
        "confidence": 0.8,
        "source": "radar",
    },
}


def hotline(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI of this interpreter's environment."""
    return subprocess.run(
        [sys.executable, "-m", "hotline", *map(str, args)],
        capture_output=True,
        check=False,
        cwd=cwd,
        timeout=60,
    )


def init_network(directory: Path) -> Path:
    done = hotline("init", directory)
    assert done.returncode == 0, done.stderr.decode()
    return directory


def flip_in(frame: bytes, marker: bytes) -> bytes:
    """``frame`` with the first byte of ``marker`` (inside the body) XOR 1."""
    at = frame.index(marker)
    return frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]


def doc_blocks() -> dict[str, str]:
    """The code blocks of docs/protocol.md marked ``<!-- example:NAME -->``."""
    text = DOC.read_text(encoding="utf-8")
    pattern = re.compile(r"<!-- example:([\w.]+) -->\n```\w*\n(.*?)```", re.DOTALL)
    return dict(pattern.findall(text))


def doc_hex(name: str) -> bytes:
    return bytes.fromhex("".join(doc_blocks()[name].split()))


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (VECTORS / "envelopes.json").read_text(encoding="utf-8")
    )
    return cases


CASES: Final = load_cases()


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_network(tmp_path_factory.mktemp("net") / "network")


@pytest.fixture(scope="module")
def signed_warning(network_dir: Path) -> bytes:
    body = network_dir.parent / "warning.json"
    body.write_text(json.dumps(WARNING_BODY), encoding="utf-8")
    done = hotline("envelope", "sign", "--network", network_dir, "--as", "BY", body)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


# ----------------------------------------------------------------------------- tests


def test_cli_signed_envelope_verifies_independently(
    network_dir: Path, signed_warning: bytes
) -> None:
    """An envelope from `hotline envelope sign` passes the independent verifier."""
    toml_text = (network_dir / "network.toml").read_text(encoding="utf-8")
    fields = independent_verify(signed_warning, toml_text)
    assert (fields["t"], fields["from"], fields["to"]) == ("warning", "BY", ["LT", "PL"])
    public = base64.b64decode(tomllib.loads(toml_text)["endpoints"]["BY"]["public_key"])
    assert fields["kid"] == hashlib.sha256(public).digest()[:8]


def test_cli_verify_prints_the_json_view(network_dir: Path, signed_warning: bytes) -> None:
    """`hotline envelope verify` prints the body with ids as UUID text and kid as hex."""
    toml_text = (network_dir / "network.toml").read_text(encoding="utf-8")
    fields = independent_verify(signed_warning, toml_text)
    frame_file = network_dir.parent / "warning.env"
    frame_file.write_bytes(signed_warning)
    done = hotline("envelope", "verify", "--network", network_dir, frame_file)
    assert done.returncode == 0, done.stderr.decode()
    shown = json.loads(done.stdout)
    assert shown["id"] == str(uuid.UUID(bytes=fields["id"]))
    assert shown["incident"] == WARNING_BODY["incident"]
    assert shown["kid"] == fields["kid"].hex()
    assert shown["track"] == WARNING_BODY["track"]


def test_flipped_body_byte_fails_both_verifiers(network_dir: Path, signed_warning: bytes) -> None:
    """One flipped bit inside the body is bad_signature for both verifiers and the CLI fails."""
    toml_text = (network_dir / "network.toml").read_text(encoding="utf-8")
    tampered = flip_in(signed_warning, b"radar")  # "radar" becomes "sadar"
    with pytest.raises(IndependentRejection) as caught:
        independent_verify(tampered, toml_text)
    assert caught.value.code == "bad_signature"
    frame_file = network_dir.parent / "tampered.env"
    frame_file.write_bytes(tampered)
    done = hotline("envelope", "verify", "--network", network_dir, frame_file)
    assert done.returncode != 0
    assert done.stderr.decode().startswith("bad_signature:")
    assert done.stdout == b""


def test_loose_key_file_is_refused(tmp_path: Path) -> None:
    """Signing with a key file of mode 0644 fails, naming the file and `chmod 600`."""
    network = init_network(tmp_path / "network")
    key_file = network / "keys" / "BY.key"
    os.chmod(key_file, 0o644)  # noqa: PTH101 - the mode is the point of the test
    body = tmp_path / "warning.json"
    body.write_text(json.dumps(WARNING_BODY), encoding="utf-8")
    done = hotline("envelope", "sign", "--network", network, "--as", "BY", body)
    assert done.returncode != 0
    assert done.stdout == b""
    error = done.stderr.decode()
    assert str(key_file) in error
    assert "chmod 600" in error


def test_doc_example_matches_the_golden_vector() -> None:
    """The worked example's envelope in docs/protocol.md is the `doc_example` vector."""
    (case,) = [c for c in CASES if c["name"] == "doc_example"]
    assert doc_hex("envelope").hex() == case["envelope_hex"]


def test_doc_example_is_consistent() -> None:
    """The doc's seed, key, kid, body, message, signature and envelope fit together."""
    seed = doc_hex("seed")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    body, message, signature = doc_hex("body"), doc_hex("message"), doc_hex("signature")
    assert seed == bytes(range(32))
    assert doc_hex("public_key") == public
    assert doc_hex("kid") == hashlib.sha256(public).digest()[:8]
    assert message == TAG + body
    assert key.sign(message) == signature
    assert doc_hex("envelope") == msgpack.packb([1, body, signature], use_bin_type=True)
    toml_key = tomllib.loads((VECTORS / "network.toml").read_text())["endpoints"]["BY"]
    assert base64.b64decode(toml_key["public_key"]) == public


def test_doc_example_verifies_independently() -> None:
    """The doc's envelope passes the independent verifier against the vector network."""
    toml_text = (VECTORS / "network.toml").read_text(encoding="utf-8")
    fields = independent_verify(doc_hex("envelope"), toml_text)
    assert fields["text"] == "Line check, BY to LT."


def test_doc_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The doc's Python snippet verifies its example with only msgpack and cryptography."""
    code = doc_blocks()["verify.py"]
    exec(compile(code, f"{DOC}:verify.py", "exec"), {"__name__": "doc_snippet"})
    assert capsys.readouterr().out.startswith("verified: BY -> ['LT']")


def test_cli_output_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`hotline envelope verify … | head` whose reader is gone: exit 141, no traceback."""
    frame_file = tmp_path / "example.env"
    frame_file.write_bytes(doc_hex("envelope"))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hotline", "envelope", "verify", "--network",
             str(VECTORS / "network.toml"), str(frame_file)],
            stdout=write_end, stderr=subprocess.PIPE, check=False, timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == b""


def test_cli_verifies_the_doc_example(tmp_path: Path) -> None:
    """`hotline envelope verify` accepts the doc's envelope with the vector network."""
    frame_file = tmp_path / "example.env"
    frame_file.write_bytes(doc_hex("envelope"))
    done = hotline("envelope", "verify", "--network", VECTORS / "network.toml", frame_file)
    assert done.returncode == 0, done.stderr.decode()
    (case,) = [c for c in CASES if c["name"] == "doc_example"]
    assert json.loads(done.stdout) == case["body_json"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_vector_agrees_up_to_the_signature(case: dict[str, Any]) -> None:
    """Each golden vector gets hotline's verdict from the independent verifier (steps 1-9)."""
    toml_text = (VECTORS / "network.toml").read_text(encoding="utf-8")
    frame = bytes.fromhex(case["envelope_hex"])
    before_signature = case["expect"] == "schema" and case["path"] in ("from", "kid")
    if case["expect"] == "ok" or (case["expect"] == "schema" and not before_signature):
        independent_verify(frame, toml_text)
        return
    with pytest.raises(IndependentRejection) as caught:
        independent_verify(frame, toml_text)
    assert caught.value.code == case["expect"]
