"""``hotline keys rotate DIR --party ID [--overlap 24h]``: a new key for a party.

What it changes in the network directory, in this order (each step is undone
by hand from what the previous ones left, see docs/deploy.md):

1. a new key is written to ``keys/<ID>.<new kid>.key`` (mode 0600, never
   over an existing file);
2. the current ``keys/<ID>.key`` is renamed ``keys/<ID>.<old kid>.key``;
3. the new key is renamed ``keys/<ID>.key``, so every default path keeps
   naming the current key;
4. ``network.toml`` is rewritten (atomically, in its canonical form): the new
   key becomes ``public_key`` with ``not_before`` = now, and the old key is
   listed under ``keys`` with ``not_after`` = now + overlap (or its earlier
   ``not_after``), so what it signed stays verifiable forever.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from hotline.auditlog.diskio import create_file
from hotline.bootstrap import NETWORK_FILE, key_path
from hotline.cli.common import Commands, now_ms
from hotline.errors import ConfigError, KeyFileError, UsageError
from hotline.keyfile import load_signing_key, other_key_path, write_signing_key
from hotline.network import Network, network_to_toml, parse_network
from hotline.network_file import load_network
from hotline.protocol.keys import KeyPeriod, PublicKey, SigningKey
from hotline.protocol.timetext import format_utc_ms

__all__ = ["Rotation", "parse_overlap", "register", "rotate_key"]

DEFAULT_OVERLAP: Final = "24h"
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_MS: Final = {"": 1000, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_overlap(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``2d`` or plain seconds, as milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--overlap {text!r} is not a duration such as 90s, 30m, 24h or 2d")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: the party, both keys, and when the old one stops being valid."""

    party: str
    old: PublicKey
    new: PublicKey
    not_before: int
    old_not_after: int
    old_key_file: Path
    new_key_file: Path


def _rotated(network: Network, party: str, new: PublicKey, now: int, overlap_ms: int) -> Network:
    """The network with ``new`` as the party's current key and the old one closing."""
    relay = network.relay_info(party)
    info = relay if relay is not None else network.endpoints[party]
    old_period = info.periods[0]  # the current key's period
    ends = now + overlap_ms
    if old_period.not_after is not None:
        ends = min(ends, old_period.not_after)
    if old_period.not_before is not None and ends <= old_period.not_before:
        raise UsageError(
            f"the current key of {party} is valid only from "
            f"{format_utc_ms(old_period.not_before)}; choose a longer overlap"
        )
    listed = tuple(p for p in info.keys if p.key != info.public_key)
    keys = (*listed, replace(old_period, not_after=ends), KeyPeriod(new, not_before=now))
    if relay is not None:
        rotated = replace(relay, public_key=new, keys=keys)
        if network.relays:  # one of several relays: [relays.<ID>]
            relays = {**network.relays, party: rotated}
            first = next(iter(relays.values()))
            return replace(network, relays=relays, relay=first)
        return replace(network, relay=rotated)
    endpoint = replace(network.endpoints[party], public_key=new, keys=keys)
    return replace(network, endpoints={**network.endpoints, party: endpoint})


def rotate_key(directory: Path, party: str, *, overlap_ms: int, now: int) -> Rotation:
    """Give ``party`` a new key in the network directory ``directory`` (see the module doc)."""
    if overlap_ms < 0:
        raise UsageError("--overlap must not be negative")
    config = directory / NETWORK_FILE
    network = load_network(config)
    if not network.is_relay(party) and party not in network.endpoints:
        raise ConfigError(f"{party!r} is not the relay or an endpoint of {config}")
    current_path = key_path(directory, party)
    current = load_signing_key(current_path)
    old_public = network.keys_of(party)
    assert old_public is not None
    if current.public != old_public[0]:
        raise KeyFileError(
            f"key file {current_path} does not hold {party}'s public_key in {config}; "
            "was it rotated already?"
        )
    fresh = SigningKey.generate()
    rotated = _rotated(network, party, fresh.public, now, overlap_ms)
    text = network_to_toml(rotated)
    parse_network(tomllib.loads(text), source=str(config))  # what we write must load
    keys_dir = current_path.parent
    retired_path = other_key_path(keys_dir, party, current.public.kid)
    if retired_path.exists():
        raise KeyFileError(f"key file {retired_path} already exists; not overwriting it")
    staged = other_key_path(keys_dir, party, fresh.public.kid)
    write_signing_key(staged, fresh)
    current_path.rename(retired_path)
    staged.rename(current_path)
    create_file(config, text.encode("utf-8"))
    period = rotated.period_of(party, current.public.kid)
    assert period is not None
    assert period.not_after is not None
    return Rotation(
        party, current.public, fresh.public, now, period.not_after, retired_path, current_path
    )



def register(commands: Commands) -> None:
    p = commands.add_parser("keys", help="manage the parties' keys (rotation)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    rotate = verbs.add_parser(
        "rotate",
        help="a new key for a party; the old one stays valid for an overlap",
        description="Writes a new private key as keys/<ID>.key, keeps the old one as "
        "keys/<ID>.<kid>.key, and updates network.toml: the new key is current from now, "
        "the old one valid until now + overlap.",
    )
    rotate.add_argument("directory", type=Path, help="the network directory (network.toml, keys/)")
    rotate.add_argument("--party", required=True, help="the endpoint id, or the relay's id")
    rotate.add_argument(
        "--overlap", default=DEFAULT_OVERLAP,
        help="how long the old key stays valid: 90s, 30m, 24h, 2d (default: %(default)s)",
    )
    rotate.set_defaults(handler=run_rotate)


def run_rotate(args: argparse.Namespace) -> int:
    rotation = rotate_key(
        args.directory, args.party, overlap_ms=parse_overlap(args.overlap), now=now_ms()
    )
    print(
        f"{rotation.party}: new key {rotation.new.kid.hex()} in {rotation.new_key_file}, "
        f"current from {format_utc_ms(rotation.not_before)}"
    )
    print(
        f"{rotation.party}: old key {rotation.old.kid.hex()} kept as {rotation.old_key_file}, "
        f"valid until {format_utc_ms(rotation.old_not_after)}"
    )
    print(
        f"next: give {args.directory / NETWORK_FILE} to every party and restart them, "
        f"{rotation.party} last"
    )
    return 0
