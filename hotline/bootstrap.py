"""``hotline init``: a new network directory with its keys.

Writes ``DIR/network.toml`` and ``DIR/keys/<ID>.key`` for every endpoint and
for the relay (``DIR/keys/<relay id>.key``). Every pair of endpoints is linked
unless links are given. Refuses to touch a directory that already holds a
network, so no key is ever overwritten.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hotline.auditlog.diskio import create_file
from hotline.errors import ConfigError
from hotline.keyfile import write_signing_key
from hotline.network import (
    DEFAULT_ENDPOINTS,
    EndpointInfo,
    Network,
    RelayInfo,
    network_to_toml,
    parse_network,
)
from hotline.protocol.keys import SigningKey
from hotline.protocol.schema import PARTY_ID

__all__ = ["NETWORK_FILE", "create_network", "key_path"]

NETWORK_FILE = "network.toml"


def key_path(directory: Path, party: str) -> Path:
    return directory / "keys" / f"{party}.key"


def _nth_url(url: str, n: int) -> str:
    """``url`` with its port raised by ``n`` (the n-th relay of a new network)."""
    parts = urlsplit(url)
    if n == 0:
        return url
    if parts.port is None:
        raise ConfigError(
            f"--relay-url {url} has no port: with --relays each relay gets the next port, "
            "so give one (ws://127.0.0.1:8700/v1/ws)"
        )
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{netloc}:{parts.port + n}"))


def create_network(
    directory: Path,
    *,
    endpoints: Sequence[str] = tuple(DEFAULT_ENDPOINTS),
    links: Iterable[tuple[str, str]] | None = None,
    name: str = "Baltic deconfliction hotline",
    origin: str = "hotline.example/baltic",
    relay_url: str = "ws://127.0.0.1:8700/v1/ws",
    relay_id: str = "relay",
    relays: Sequence[str] = (),
) -> Network:
    """Generate keys and write a validated network.toml into ``directory``.

    ``relays`` names several independent relays (``[relays.<ID>]``): each gets
    its own key, the origin ``<origin>/<ID>`` and the URL ``relay_url`` with its
    port raised by its position (8700, 8701, …); the one-relay network otherwise.
    """
    config = directory / NETWORK_FILE
    if config.exists():
        raise ConfigError(f"{config} already exists; choose an empty directory")
    if len(set(endpoints)) != len(endpoints) or not endpoints:
        raise ConfigError("--endpoints must name distinct endpoints")
    for endpoint in endpoints:
        if not PARTY_ID.fullmatch(endpoint):
            raise ConfigError(f"endpoint id {endpoint!r} must be letters, digits, _ . -")
    pairs = (
        [(a, b) for i, a in enumerate(endpoints) for b in endpoints[i + 1 :]]
        if links is None
        else list(links)
    )
    if len(set(relays)) != len(relays):
        raise ConfigError("--relays must name distinct relays")
    for relay in relays:
        if not PARTY_ID.fullmatch(relay) or relay in endpoints:
            raise ConfigError(
                f"relay id {relay!r} must be letters, digits, _ . - and not an endpoint's id"
            )
    relay_ids = tuple(relays) or (relay_id,)
    keys = {party: SigningKey.generate() for party in (*relay_ids, *endpoints)}
    several = {
        r: RelayInfo(r, f"{origin}/{r}", _nth_url(relay_url, i), keys[r].public, operator=r)
        for i, r in enumerate(relays)
    }
    network = Network(
        name=name,
        relays=several,
        relay=next(iter(several.values()), None)
        or RelayInfo(relay_id, origin, relay_url, keys[relay_id].public),
        endpoints={
            e: EndpointInfo(
                e,
                DEFAULT_ENDPOINTS.get(e, (e, "en"))[0],
                keys[e].public,
                DEFAULT_ENDPOINTS.get(e, (e, "en"))[1],
            )
            for e in endpoints
        },
        links=frozenset(frozenset(p) for p in pairs),
    )
    text = network_to_toml(network)
    parse_network(tomllib.loads(text), source=str(config))  # what we write must load
    directory.mkdir(parents=True, exist_ok=True)
    for party, key in keys.items():
        write_signing_key(key_path(directory, party), key)
    create_file(config, text.encode("utf-8"))
    return network
