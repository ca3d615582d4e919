"""``hotline endpoint``: a national gateway, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from hotline.cli.common import Commands, NetworkArg
from hotline.endpoint.connection import HEARTBEAT_S
from hotline.endpoint.service import EndpointConfig, run_endpoint
from hotline.endpoint.sessions import DEFAULT_IDLE_S
from hotline.errors import ConfigError, TlsError
from hotline.tls import ClientTls, ServerTls, TlsSettings, parse_pin

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
    p.add_argument("--api-name", action="append", default=[], metavar="NAME",
                   help="a host name the console is reached by (the Host header); loopback's "
                        "and --host are always accepted, any other is refused with 421")
    p.add_argument("--session-idle", type=float, default=DEFAULT_IDLE_S, metavar="SECONDS",
                   help="log an operator out after this long without a request "
                        "(default: %(default)s)")
    p.add_argument("--relay-url", action="append", default=[],
                   help="the relay's WebSocket URL (default: from network.toml); repeat it for "
                        "relay replicas sharing one log: the endpoint fails over between them")
    p.add_argument("--heartbeat", type=float, default=HEARTBEAT_S, metavar="SECONDS",
                   help="ping the relay after this long without a frame; reconnect when no "
                        "pong comes within half of it (default: %(default)s)")
    p.add_argument("--feeds", type=Path,
                   help="sensor feeds allowed to post alerts (default: DATA/feeds.toml if "
                        "present); add one with: hotline feed-token")
    relay = p.add_argument_group("TLS to the relay (a wss:// relay URL)")
    relay.add_argument("--relay-ca", type=Path,
                       help="trust the relay's certificate if this CA issued it (PEM; default: "
                            "the system's trust store)")
    relay.add_argument("--relay-pin",
                       help="accept only the relay certificate with this SHA-256 "
                            "(sha256:<hex>, or hex with colons)")
    relay.add_argument("--tls-cert", type=Path,
                       help="mutual TLS: this endpoint's client certificate to the relay (PEM)")
    relay.add_argument("--tls-key", type=Path, help="its private key (PEM, mode 0600)")
    api = p.add_argument_group("TLS for the console and feed API")
    api.add_argument("--api-tls-cert", type=Path,
                     help="serve the API over https with this certificate chain (PEM)")
    api.add_argument("--api-tls-key", type=Path, help="its private key (PEM, mode 0600)")
    api.add_argument("--api-client-ca", type=Path,
                     help="mutual TLS: API clients must show a certificate from this CA")
    p.add_argument("--unsafe-plaintext", action="store_true",
                   help="allow plaintext off loopback (a ws:// relay URL, or the API on a "
                        "non-loopback host): anyone on the path can read and alter the traffic")
    p.set_defaults(handler=run)


def tls_from(args: argparse.Namespace) -> TlsSettings:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise TlsError("give --tls-cert and --tls-key together")
    if (args.api_tls_cert is None) != (args.api_tls_key is None):
        raise TlsError("give --api-tls-cert and --api-tls-key together")
    serve = None
    if args.api_tls_cert is not None:
        serve = ServerTls(args.api_tls_cert, args.api_tls_key, args.api_client_ca)
    elif args.api_client_ca is not None:
        raise TlsError("--api-client-ca needs the API's own --api-tls-cert and --api-tls-key")
    pin = parse_pin(args.relay_pin) if args.relay_pin else None
    client = ClientTls(ca=args.relay_ca, pin=pin, cert=args.tls_cert, key=args.tls_key)
    return TlsSettings(serve=serve, client=client, unsafe_plaintext=args.unsafe_plaintext)


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
        relay_url=args.relay_url[0] if args.relay_url else None,
        relay_urls=tuple(args.relay_url),
        feeds=args.feeds,
        tls=tls_from(args),
        heartbeat_s=args.heartbeat,
        api_names=tuple(args.api_name),
        session_idle_s=args.session_idle,
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
