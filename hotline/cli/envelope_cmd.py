"""``hotline envelope sign|verify``: the integrator's tool for single envelopes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from hotline.cli.common import Commands, NetworkArg, now_ms
from hotline.errors import ConfigError, RejectCode, Rejected, UsageError
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.jsonview import body_to_json, json_to_body

__all__ = ["register"]


def register(commands: Commands) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "envelope", help="sign a JSON body as an endpoint, or decode and verify an envelope"
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    sign = verbs.add_parser("sign", help="sign BODY.json and write the envelope bytes to stdout")
    sign.add_argument("--network", required=True, type=NetworkArg, help="network.toml or its dir")
    sign.add_argument("--as", dest="party", required=True, help="the endpoint that signs")
    sign.add_argument("--key", type=Path, help="private key (default: keys/<ID>.key)")
    sign.add_argument("--out", type=Path, help="write to this file instead of stdout")
    sign.add_argument("body", type=Path, help="the body as JSON ('-' for stdin)")
    sign.set_defaults(handler=run_sign)

    verify = verbs.add_parser("verify", help="verify an envelope and print its body as JSON")
    verify.add_argument("--network", required=True, type=NetworkArg, help="network.toml or dir")
    verify.add_argument("file", type=Path, help="the envelope bytes ('-' for stdin)")
    verify.set_defaults(handler=run_verify)


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def run_sign(args: argparse.Namespace) -> int:
    network = args.network.load()
    party: str = args.party
    if party not in network.endpoints:
        raise ConfigError(f"{party!r} is not an endpoint of {args.network.file}")
    key = args.network.signing_key(party, args.key)
    if key.public != network.endpoints[party].public_key:
        raise ConfigError(f"the key file does not hold {party}'s key in {args.network.file}")
    try:
        data = json.loads(_read(args.body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.body} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Rejected(RejectCode.SCHEMA, "the body must be a JSON object", "")
    now = now_ms()
    if "id" not in data:
        data["id"] = format_id(make_id(now, os.urandom(10)))
    data.setdefault("from", party)
    data.setdefault("ts", now)
    # seq defaults to the time in microseconds: it increases from one run to the next.
    data.setdefault("seq", time.time_ns() // 1000)
    data.setdefault("kid", key.public.kid.hex())
    body = json_to_body(data)
    if body.sender != party:
        raise Rejected(RejectCode.SENDER_MISMATCH, f"the body is from {body.sender}, not {party}")
    frame = seal(body, key)
    if args.out is not None:
        args.out.write_bytes(frame)
    else:
        sys.stdout.buffer.write(frame)
        sys.stdout.buffer.flush()
    return 0


def run_verify(args: argparse.Namespace) -> int:
    network = args.network.load()
    envelope = open_envelope(
        _read(args.file), network, max_size=network.limits.max_frame_bytes
    )
    print(json.dumps(body_to_json(envelope.body), ensure_ascii=False, indent=2))
    return 0
