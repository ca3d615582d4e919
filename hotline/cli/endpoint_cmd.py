"""``hotline endpoint``: a national gateway, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from hotline.cli.common import Commands, NetworkArg
from hotline.endpoint.service import EndpointConfig, run_endpoint
from hotline.errors import ConfigError

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "endpoint", help="run an endpoint: journal, relay connection, witness, local API"
    )
    p.add_argument("--network", required=True, type=NetworkArg, help="network.toml or its dir")
    p.add_argument("--id", dest="endpoint_id", required=True, help="this endpoint's id, e.g. LT")
    p.add_argument("--data", required=True, type=Path, help="the journal's directory")
    p.add_argument("--key", type=Path, help="the private key (default: keys/<ID>.key)")
    p.add_argument("--host", default="127.0.0.1", help="where the local API listens")
    p.add_argument("--port", type=int, default=8800, help="0 picks a free port (it is logged)")
    p.add_argument("--relay-url", help="the relay's WebSocket URL (default: from network.toml)")
    p.add_argument("--feeds", type=Path,
                   help="sensor feeds allowed to post alerts (default: DATA/feeds.toml if "
                        "present); add one with: hotline feed-token")
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> EndpointConfig:
    network = args.network.load()
    endpoint_id: str = args.endpoint_id
    if endpoint_id not in network.endpoints:
        raise ConfigError(f"{endpoint_id!r} is not an endpoint of {args.network.file}")
    return EndpointConfig(
        network=network,
        endpoint_id=endpoint_id,
        key=args.network.signing_key(endpoint_id, args.key),
        data_dir=args.data,
        host=args.host,
        port=args.port,
        relay_url=args.relay_url,
        feeds=args.feeds,
    )


async def serve(config: EndpointConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_endpoint(config, stop)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(config_from(args)))
    return 0
