"""``hotline keys rotate``: a new key file, the old one kept, network.toml updated."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from hotline.bootstrap import create_network, key_path
from hotline.cli import relay_cmd
from hotline.cli.keys_cmd import parse_overlap, rotate_key
from hotline.cli.main import build_parser
from hotline.errors import ConfigError, KeyFileError, UsageError
from hotline.keyfile import load_signing_key, other_key_path
from hotline.network_file import load_network
from tests.auditlog.logs import run_cli

NOW = 1_780_000_000_000


@pytest.fixture
def netdir(tmp_path: Path) -> Path:
    create_network(tmp_path / "net", endpoints=["BY", "LT"])
    return tmp_path / "net"


def test_rotate_writes_a_new_current_key_and_keeps_the_old_one(
    netdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys/LT.key is new (0600), the old key moves to keys/LT.<kid>.key, both periods set."""
    old = load_signing_key(key_path(netdir, "LT"))
    before = int(time.time() * 1000)
    code, out, err = run_cli(["keys", "rotate", str(netdir), "--party", "LT",
                              "--overlap", "2h"], capsys)
    after = int(time.time() * 1000)
    assert (code, err) == (0, "")
    new = load_signing_key(key_path(netdir, "LT"))
    kept = other_key_path(netdir / "keys", "LT", old.public.kid)
    assert stat.S_IMODE(key_path(netdir, "LT").stat().st_mode) == 0o600
    assert load_signing_key(kept).public == old.public
    network = load_network(netdir / "network.toml")
    assert network.endpoints["LT"].public_key == new.public
    assert network.keys_of("LT") == (new.public, old.public)
    new_period = network.period_of("LT", new.public.kid)
    old_period = network.period_of("LT", old.public.kid)
    assert new_period is not None
    assert old_period is not None
    assert new_period.not_before is not None
    assert before <= new_period.not_before <= after
    assert old_period.not_after == new_period.not_before + 7_200_000
    assert old_period.not_before is None
    assert new.public.kid.hex() in out
    assert str(kept) in out


def test_a_second_rotation_keeps_every_earlier_key(netdir: Path) -> None:
    """Rotating twice lists all three keys; the first keeps its earlier not_after."""
    first = load_signing_key(key_path(netdir, "LT")).public
    rotate_key(netdir, "LT", overlap_ms=3_600_000, now=NOW)
    second = load_signing_key(key_path(netdir, "LT")).public
    rotate_key(netdir, "LT", overlap_ms=86_400_000, now=NOW + 60_000)
    third = load_signing_key(key_path(netdir, "LT")).public
    network = load_network(netdir / "network.toml")
    assert set(network.keys_of("LT") or ()) == {first, second, third}
    assert network.keys_valid_at("LT", NOW + 3_600_000) == (third, second)
    assert network.keys_valid_at("LT", NOW + 60_000 + 86_400_000) == (third,)
    assert (netdir / "keys" / f"LT.{second.kid.hex()}.key").exists()


def test_the_relay_loads_its_retired_key_to_sign_checkpoints_in_the_overlap(netdir: Path) -> None:
    """After a relay rotation, `hotline relay` signs with the new key and the kept old one."""
    old = load_signing_key(key_path(netdir, "relay")).public
    rotate_key(netdir, "relay", overlap_ms=3_600_000, now=int(time.time() * 1000))
    args = build_parser().parse_args(
        ["relay", "--network", str(netdir), "--data", str(netdir / "data")]
    )
    config = relay_cmd.config_from(args)
    assert config.key.public == load_network(netdir / "network.toml").relay.public_key
    assert [k.public for k in config.also_sign] == [old]


def test_the_relay_refuses_a_key_that_is_not_current(
    netdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hotline relay --key OLD` after a rotation names both key ids and exits 2."""
    old = key_path(netdir, "relay")
    rotate_key(netdir, "relay", overlap_ms=0, now=NOW)
    kept = next(netdir.glob("keys/relay.*.key"))
    args = build_parser().parse_args(
        ["relay", "--network", str(netdir), "--data", str(netdir / "d"), "--key", str(kept)]
    )
    with pytest.raises(UsageError, match="is not public_key of \\[relay\\]"):
        relay_cmd.config_from(args)
    assert old.exists()


def test_an_unknown_party_is_refused_and_nothing_changes(
    netdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--party XX: exit 2, the network and keys untouched."""
    before = (netdir / "network.toml").read_bytes()
    code, _, err = run_cli(["keys", "rotate", str(netdir), "--party", "XX"], capsys)
    assert code == 2
    assert "'XX' is not the relay or an endpoint" in err
    assert (netdir / "network.toml").read_bytes() == before
    assert sorted(p.name for p in (netdir / "keys").iterdir()) == [
        "BY.key", "LT.key", "relay.key"
    ]


def test_a_key_file_that_is_not_the_current_key_is_refused(netdir: Path) -> None:
    """If keys/LT.key no longer matches public_key, rotate stops before writing anything."""
    key_path(netdir, "LT").unlink()
    key_path(netdir, "BY").rename(key_path(netdir, "LT"))
    with pytest.raises(KeyFileError, match="does not hold LT's public_key"):
        rotate_key(netdir, "LT", overlap_ms=0, now=NOW)
    assert sorted(p.name for p in (netdir / "keys").iterdir()) == ["LT.key", "relay.key"]


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("30m", 1_800_000), ("24h", 86_400_000), ("2d", 172_800_000),
     ("0", 0), ("1.5h", 5_400_000), ("45", 45_000)],
)
def test_overlaps_are_written_with_a_unit(text: str, ms: int) -> None:
    """--overlap takes s, m, h, d or plain seconds."""
    assert parse_overlap(text) == ms


def test_a_malformed_overlap_is_a_usage_error() -> None:
    """--overlap soon is refused with an example."""
    with pytest.raises(UsageError, match="such as 90s, 30m, 24h or 2d"):
        parse_overlap("soon")


def test_one_of_several_relays_rotates_and_runs_with_its_own_view(tmp_path: Path) -> None:
    """keys rotate --party osce changes only [relays.osce]; `relay --relay osce` signs with
    the new key (and the kept old one), as the one relay of its view; without --relay it
    is refused."""
    netdir = tmp_path / "net"
    create_network(netdir, endpoints=["BY", "LT"], relays=["by", "osce"])
    before = load_network(netdir / "network.toml")
    old = load_signing_key(key_path(netdir, "osce")).public
    rotate_key(netdir, "osce", overlap_ms=3_600_000, now=int(time.time() * 1000))
    after = load_network(netdir / "network.toml")
    assert after.relays["by"] == before.relays["by"]
    assert after.relays["osce"].public_key != old
    args = build_parser().parse_args(
        ["relay", "--network", str(netdir), "--data", str(tmp_path / "d"), "--relay", "osce"]
    )
    config = relay_cmd.config_from(args)
    assert config.network.relay.id == "osce"
    assert not config.network.multipath
    assert config.key.public == after.relays["osce"].public_key
    assert [k.public for k in config.also_sign] == [old]
    assert b"[relay]" in config.network_toml
    bare = build_parser().parse_args(
        ["relay", "--network", str(netdir), "--data", str(tmp_path / "d")]
    )
    with pytest.raises(ConfigError, match="--relay ID"):
        relay_cmd.config_from(bare)
