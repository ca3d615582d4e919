"""``hotline relay``: the hub, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from hotline.auditlog.streamconfig import load_store_file
from hotline.cli.common import Commands, NetworkArg
from hotline.errors import ConfigError, StoreError, TlsError
from hotline.keyfile import load_other_keys
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, start_relay
from hotline.tls import ServerTls, TlsSettings

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser("relay", help="run the relay: WebSocket for endpoints, HTTP for all")
    p.add_argument("--network", required=True, type=NetworkArg, help="network.toml or its dir")
    p.add_argument("--data", required=True, type=Path, help="the relay's log directory")
    p.add_argument("--key", type=Path, help="the relay's private key (default: keys/<relay>.key)")
    p.add_argument("--relay", metavar="ID",
                   help="which relay of a network of several ([relays.<ID>]) this is; each "
                        "runs as a relay of its own, with its key, origin and log")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700, help="0 picks a free port (it is logged)")
    p.add_argument("--checkpoint-every", type=int, default=256, help="sign after N new entries")
    p.add_argument("--checkpoint-interval", type=float, default=1.0,
                   help="or after this many seconds with new entries")
    p.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS",
                   help="ping an endpoint after this long without a frame; drop its connection "
                        "when no pong comes within half of it (default: %(default)s)")
    store = p.add_argument_group("high availability (docs/deploy.md)")
    store.add_argument("--store", type=Path, metavar="FILE",
                       help='a TOML file whose [store] table says where the log lives: kind = '
                            '"file" (the default: DATA) or "nats" (a JetStream stream shared '
                            "by relay replicas; DATA then holds this replica's mirror of it)")
    store.add_argument("--replica-name", default="",
                       help="this replica's name in the log and the relay's events")
    tls = p.add_argument_group("TLS (plaintext is served only on loopback unless unsafe)")
    tls.add_argument("--tls-cert", type=Path, help="serve TLS with this certificate chain (PEM)")
    tls.add_argument("--tls-key", type=Path, help="its private key (PEM, mode 0600)")
    tls.add_argument("--tls-client-ca", type=Path,
                     help="mutual TLS: endpoints must show a certificate from this CA (PEM)")
    tls.add_argument("--unsafe-plaintext", action="store_true",
                     help="serve without TLS on a non-loopback host: anyone on the path can "
                          "read and alter the traffic")
    p.set_defaults(handler=run)


def tls_from(args: argparse.Namespace) -> TlsSettings:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise TlsError("give --tls-cert and --tls-key together")
    if args.tls_cert is None:
        if args.tls_client_ca is not None:
            raise TlsError("--tls-client-ca needs the relay's own --tls-cert and --tls-key")
        return TlsSettings(unsafe_plaintext=args.unsafe_plaintext)
    serve = ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca)
    return TlsSettings(serve=serve, unsafe_plaintext=args.unsafe_plaintext)


def config_from(args: argparse.Namespace) -> RelayConfig:
    whole = args.network.load()
    network_toml = args.network.file.read_bytes()
    if whole.multipath:
        if args.relay is None:
            raise ConfigError(
                f"{args.network.file} lists several relays ({', '.join(whole.relays)}): "
                "say which this is with --relay ID"
            )
        # the relay runs with its own view: itself and the links it carries; its bundle's
        # network.toml is that view, so the log is audited as any one relay's
        network = whole.for_relay(args.relay)
        network_toml = network_to_toml(network).encode("utf-8")
    else:
        network = whole.for_relay(args.relay) if args.relay is not None else whole
    key = args.network.signing_key(network.relay.id, args.key)
    if key.public != network.relay.public_key:
        raise ConfigError(
            f"the relay's key {key.public.kid.hex()} is not public_key of [relay] in "
            f"{args.network.file} ({network.relay.public_key.kid.hex()})"
        )
    return RelayConfig(
        network=network,
        network_toml=network_toml,
        data_dir=args.data,
        key=key,
        # keys/<relay>.<kid>.key: keys rotated out, still signing checkpoints in their overlap
        also_sign=tuple(load_other_keys(args.network.directory / "keys", network.relay.id)),
        host=args.host,
        port=args.port,
        checkpoint_every=args.checkpoint_every,
        checkpoint_interval_ms=int(args.checkpoint_interval * 1000),
        tls=tls_from(args),
        heartbeat_s=args.heartbeat,
        stream=None if args.store is None else load_store_file(
            args.store, max_age_ms=network.limits.max_age_ms
        ),
        replica_name=args.replica_name,
    )


async def serve(config: RelayConfig) -> None:
    running = await start_relay(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    halted = running.relay.halted
    try:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(halted.wait())]
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
    finally:
        await running.stop()
    if halted.is_set():
        raise StoreError(running.relay.halt_reason)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(config_from(args)))
    return 0
