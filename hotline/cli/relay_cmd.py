"""``hotline relay``: the hub, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from hotline.cli.common import Commands, NetworkArg
from hotline.relay.server import RelayConfig, start_relay

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser("relay", help="run the relay: WebSocket for endpoints, HTTP for all")
    p.add_argument("--network", required=True, type=NetworkArg, help="network.toml or its dir")
    p.add_argument("--data", required=True, type=Path, help="the relay's log directory")
    p.add_argument("--key", type=Path, help="the relay's private key (default: keys/<relay>.key)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700, help="0 picks a free port (it is logged)")
    p.add_argument("--checkpoint-every", type=int, default=256, help="sign after N new entries")
    p.add_argument("--checkpoint-interval", type=float, default=1.0,
                   help="or after this many seconds with new entries")
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> RelayConfig:
    network = args.network.load()
    return RelayConfig(
        network=network,
        network_toml=args.network.file.read_bytes(),
        data_dir=args.data,
        key=args.network.signing_key(network.relay.id, args.key),
        host=args.host,
        port=args.port,
        checkpoint_every=args.checkpoint_every,
        checkpoint_interval_ms=int(args.checkpoint_interval * 1000),
    )


async def serve(config: RelayConfig) -> None:
    running = await start_relay(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(config_from(args)))
    return 0
