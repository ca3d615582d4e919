"""``hotline init DIR``: a new network with keys for each endpoint and the relay."""

from __future__ import annotations

import argparse
from pathlib import Path

from hotline.bootstrap import NETWORK_FILE, create_network
from hotline.cli.common import Commands
from hotline.errors import UsageError
from hotline.network import DEFAULT_ENDPOINTS

__all__ = ["register"]


def register(commands: Commands) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "init", help="create a network: network.toml and a key per endpoint and the relay"
    )
    p.add_argument("directory", type=Path, help="where to write network.toml and keys/")
    p.add_argument(
        "--endpoints",
        default=",".join(DEFAULT_ENDPOINTS),
        help="comma-separated endpoint ids (default: %(default)s)",
    )
    p.add_argument(
        "--links",
        help="comma-separated pairs such as BY-LT,BY-PL (default: every pair)",
    )
    p.add_argument("--origin", default="hotline.example/baltic", help="the log's origin line")
    p.add_argument(
        "--relay-url", default="ws://127.0.0.1:8700/v1/ws", help="where endpoints connect"
    )
    p.add_argument(
        "--relays",
        help="comma-separated ids of several independent relays, such as by,osce; each gets "
             "its own key, origin <origin>/<id> and port (default: one relay)",
    )
    p.set_defaults(handler=run)


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        parts = item.strip().split("-")
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"link {item!r} must be written as two ids joined by '-', e.g. BY-LT")
        pairs.append((parts[0], parts[1]))
    return pairs


def run(args: argparse.Namespace) -> int:
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    network = create_network(
        args.directory,
        endpoints=endpoints,
        links=None if args.links is None else _pairs(args.links),
        origin=args.origin,
        relay_url=args.relay_url,
        relays=[r.strip() for r in (args.relays or "").split(",") if r.strip()],
    )
    print(f"created {args.directory / NETWORK_FILE}")
    for party in (*(r.id for r in network.all_relays), *network.endpoints):
        print(f"  key {args.directory / 'keys' / (party + '.key')} (mode 0600)")
    return 0
