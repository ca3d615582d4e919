"""Network configuration, ``hotline init`` and private key files."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.tiles import MAX_ENTRY_SIZE
from hotline.bootstrap import create_network, key_path
from hotline.cli.main import main
from hotline.errors import ConfigError, KeyFileError, UsageError
from hotline.keyfile import load_signing_key, write_signing_key
from hotline.network import DEFAULT_DEADLINES, network_to_toml, parse_network
from hotline.network_file import load_network
from hotline.protocol.envelope import LARGEST_MAX_FRAME
from hotline.protocol.keys import SigningKey
from hotline.protocol.vocab import Precedence
from tests.factories import make_network


def _doc() -> dict[str, Any]:
    return tomllib.loads(network_to_toml(make_network().network))


def test_init_writes_a_network_and_private_keys_mode_0600(tmp_path: Path) -> None:
    """init creates network.toml and one 0600 PEM key per endpoint and the relay."""
    network = create_network(tmp_path / "net")
    assert list(network.endpoints) == ["BY", "LT", "LV", "EE", "PL"]
    for party in ("relay", "BY", "LT", "LV", "EE", "PL"):
        path = key_path(tmp_path / "net", party)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        key = load_signing_key(path)
        assert network.keys_of(party) == (key.public,)
    assert load_network(tmp_path / "net" / "network.toml") == network


def test_init_links_every_pair_by_default_or_the_pairs_given(tmp_path: Path) -> None:
    """Without --links every pair is linked; with them, only those."""
    full = create_network(tmp_path / "a")
    assert len(full.links) == 10
    some = create_network(tmp_path / "b", links=[("BY", "LT"), ("BY", "PL")])
    assert some.linked("LT", "BY")
    assert not some.linked("LT", "PL")


def test_init_refuses_to_overwrite_a_network(tmp_path: Path) -> None:
    """A second init in the same directory changes nothing."""
    create_network(tmp_path)
    before = (tmp_path / "network.toml").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_network(tmp_path)
    assert (tmp_path / "network.toml").read_bytes() == before


def test_init_command_takes_endpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hotline init DIR --endpoints A,B` creates exactly those endpoints."""
    assert main(["init", str(tmp_path / "n"), "--endpoints", "BY,LT"]) == 0
    assert list(load_network(tmp_path / "n" / "network.toml").endpoints) == ["BY", "LT"]
    assert "network.toml" in capsys.readouterr().out


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file readable or writable by group or others is refused, with the fix."""
    path = tmp_path / "LT.key"
    write_signing_key(path, SigningKey.generate())
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_signing_key(path)
    assert str(path) in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)


def test_a_key_that_is_not_ed25519_pem_is_refused(tmp_path: Path) -> None:
    """Garbage in a key file is named as such."""
    path = tmp_path / "bad.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(KeyFileError, match="PEM PKCS#8 Ed25519"):
        load_signing_key(path)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    """A key file that does not exist is named in the error."""
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signing_key(tmp_path / "none.key")


def test_the_written_config_round_trips() -> None:
    """network_to_toml and parse_network are inverse."""
    net = make_network().network
    assert parse_network(tomllib.loads(network_to_toml(net))) == net


def test_defaults_match_the_specification() -> None:
    """Deadlines default to flash 5 s / 60 s … routine 10 min / 4 h; frames to 60 KiB."""
    net = parse_network({k: v for k, v in _doc().items() if k not in ("deadlines", "limits")})
    assert net.deadlines == DEFAULT_DEADLINES
    assert net.deadlines[Precedence.FLASH].delivered_ms == 5_000
    assert net.deadlines[Precedence.ROUTINE].acknowledged_ms == 4 * 3600 * 1000
    assert net.limits.max_frame_bytes == 60 * 1024


def _set(doc: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is None:
        del target[leaf]
    else:
        target[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("relay.public_key", "not base64!", "[relay] public_key is not valid base64"),
        ("relay.public_key", "AAAA", "[relay] public_key must be 32 bytes"),
        ("relay.origin", None, "[relay]: origin must be a non-empty string"),
        ("relay.colour", "red", "[relay]: unknown key 'colour'"),
        ("endpoints.LT.language", "de", "[endpoints.LT]: language must be one of"),
        ("endpoints.LT.public_key", None, "[endpoints.LT]: public_key must be"),
        ("links.0.between", ["BY", "XX"], "[[links]] #1: 'XX' is not an endpoint"),
        ("links.0.between", ["BY", "BY"], "[[links]] #1: between must name two different"),
        ("deadlines.urgent", {"delivered_s": 1}, "[deadlines.urgent]: not a precedence"),
        ("deadlines.flash.delivered_s", -1, "[deadlines.flash]: delivered_s must be a positive"),
        ("limits.max_frame_bytes", 10, "[limits]: max_frame_bytes must be at least 1024"),
        ("limits.max_frame_bytes", 65_514, "[limits]: max_frame_bytes must be at most 65,513"),
        ("network", None, "[network] is missing"),
    ],
)
def test_bad_config_names_the_table_and_key(path: str, value: object, words: str) -> None:
    """Every invalid setting is refused with the table and key that are wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_network(_set(_doc(), path, value), source="net.toml")
    assert words in str(caught.value)


def test_two_parties_cannot_share_a_key() -> None:
    """Reusing one public key for two parties is refused."""
    doc = _doc()
    doc["endpoints"]["LT"]["public_key"] = doc["endpoints"]["BY"]["public_key"]
    with pytest.raises(ConfigError, match="share one public key"):
        parse_network(doc)


def test_invalid_toml_is_named(tmp_path: Path) -> None:
    """A file that is not TOML is refused with its path."""
    path = tmp_path / "network.toml"
    path.write_text("[relay\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_network(path)


def test_the_largest_frame_a_network_may_admit_fits_one_log_entry() -> None:
    """A frame of max_frame_bytes at its largest, with the largest relay_ts, is one log entry;
    one byte more is not: the bound keeps every admitted frame loggable."""
    limits = parse_network(_set(_doc(), "limits.max_frame_bytes", LARGEST_MAX_FRAME)).limits
    assert limits.max_frame_bytes == LARGEST_MAX_FRAME
    latest = 2**64 - 1
    assert len(encode_envelope_entry(latest, b"\x00" * LARGEST_MAX_FRAME)) == MAX_ENTRY_SIZE
    with pytest.raises(UsageError):
        encode_envelope_entry(latest, b"\x00" * (LARGEST_MAX_FRAME + 1))
