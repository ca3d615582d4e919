"""``hotline send``: a warning, update, cancel or text from the shell, through an endpoint.

The endpoint signs and journals the message exactly as if its console had sent
it; this command only builds the JSON body and posts it to ``/api/messages``.
It logs in first as ``--operator`` (default ``$HOTLINE_OPERATOR``), with the
password of ``--password-file`` or ``$HOTLINE_PASSWORD``; the message is
signed with that operator's name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from hotline.cli.common import Commands
from hotline.cli.operator_cmd import PASSWORD_ENV, read_password
from hotline.endpoint.login_client import log_in
from hotline.errors import NetworkError, PeerCertificateRefused, TlsError, UsageError
from hotline.protocol.ids import format_id, make_id
from hotline.tls import (
    ClientTls,
    client_connector,
    network_sentence,
    parse_pin,
    refusal_sentence,
)

__all__ = ["OPERATOR_ENV", "register"]

OPERATOR_ENV = "HOTLINE_OPERATOR"


def register(commands: Commands) -> None:
    p = commands.add_parser("send", help="send a message from the shell through an endpoint")
    p.add_argument("--api", required=True, help="the endpoint's base URL, e.g. http://127.0.0.1:8701")
    _login_arguments(p)
    tls = p.add_argument_group("TLS, for an https API")
    tls.add_argument("--ca", type=Path,
                     help="trust the API's certificate if this CA issued it (PEM; default: the "
                          "system's trust store)")
    tls.add_argument("--pin", help="accept only the API certificate with this SHA-256 "
                                   "(sha256:<hex>, or hex with colons)")
    tls.add_argument("--cert", type=Path, help="a client certificate, when the API asks for one")
    tls.add_argument("--key", type=Path, help="its private key (PEM, mode 0600)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    for kind in ("warning", "update"):
        w = kinds.add_parser(kind, help=f"a {kind} (track in SI units: degrees, m, m/s)")
        if kind == "update":
            w.add_argument("--ref", required=True, help="the id of the message it updates")
        else:
            w.add_argument("--to", required=True, help="comma-separated endpoint ids, or *")
            w.add_argument("--precedence", default="flash",
                           choices=("flash", "immediate", "priority", "routine"))
            w.add_argument("--status", default="actual", choices=("actual", "exercise", "test"))
        w.add_argument("--lat", type=float, required=True)
        w.add_argument("--lon", type=float, required=True)
        w.add_argument("--object", default="uav")
        w.add_argument("--source", default="radar")
        w.add_argument("--confidence", type=float, default=0.5)
        w.add_argument("--count", type=int)
        w.add_argument("--pos-err-m", type=float)
        w.add_argument("--alt-m", type=float)
        w.add_argument("--alt-ref", default="msl", choices=("msl", "agl", "hae"))
        w.add_argument("--heading-deg", type=float)
        w.add_argument("--speed-mps", type=float)
        w.add_argument("--sensor-id")
        w.add_argument("--crossing", help="predicted border crossing, e.g. BY-LT")
        w.add_argument("--crossing-in", type=float, help="seconds until the predicted crossing")
        w.add_argument("--advice", choices=("monitor", "prepare", "avoid", "all_clear"))
        w.add_argument("--text")
        w.add_argument("--lang", default="en")
        w.set_defaults(handler=run)

    c = kinds.add_parser("cancel", help="end an incident")
    c.add_argument("--ref", required=True, help="the id of the warning it cancels")
    c.add_argument("--reason", required=True, choices=(
        "resolved", "false_alarm", "left_area", "landed", "lost_contact", "other"))
    c.add_argument("--text")
    c.add_argument("--lang", default="en")
    c.set_defaults(handler=run)

    t = kinds.add_parser("text", help="free text to duty officers")
    t.add_argument("--to", required=True)
    t.add_argument("--text", required=True)
    t.add_argument("--lang", default="en")
    t.add_argument("--precedence", default="routine",
                   choices=("flash", "immediate", "priority", "routine"))
    t.add_argument("--status", default="actual", choices=("actual", "exercise", "test"))
    t.set_defaults(handler=run)

    j = kinds.add_parser("json", help="post a body written as JSON (the console's format)")
    j.add_argument("file", type=Path)
    j.set_defaults(handler=run)


def _login_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operator", default=os.environ.get(OPERATOR_ENV),
                   help=f"log in as this operator (default: ${OPERATOR_ENV})")
    p.add_argument("--password-file", type=Path,
                   help=f"the operator's password, first line (default: ${PASSWORD_ENV})")


def _recipients(text: str) -> list[str] | str:
    return "*" if text == "*" else [p.strip() for p in text.split(",") if p.strip()]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _track(args: argparse.Namespace, now: int) -> dict[str, Any]:
    track: dict[str, Any] = {
        "lat": args.lat, "lon": args.lon, "observed_at": now, "object": args.object,
        "confidence": args.confidence, "source": args.source,
    }
    optional = {"count": args.count, "pos_err_m": args.pos_err_m, "heading_deg": args.heading_deg,
                "speed_mps": args.speed_mps, "sensor_id": args.sensor_id}
    track.update({k: v for k, v in optional.items() if v is not None})
    if args.alt_m is not None:
        track["alt_m"], track["alt_ref"] = args.alt_m, args.alt_ref
    return track


async def _original(session: aiohttp.ClientSession, api: str, ref: str) -> dict[str, Any]:
    async with session.get(api.rstrip("/") + "/api/outbox") as response:
        outbox = await response.json()
    items = outbox.get("messages", []) if isinstance(outbox, dict) else outbox
    for item in items:
        if item.get("id") == ref:
            body = item.get("body", item)
            if isinstance(body, dict):
                return body
    raise UsageError(f"{ref} is not a message this endpoint sent")


async def _body(args: argparse.Namespace, session: aiohttp.ClientSession) -> dict[str, Any]:
    now = _now_ms()
    if args.kind == "json":
        try:
            data = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read {args.file}: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{args.file} must hold a JSON object")
        return data
    if args.kind == "text":
        return {"t": "text", "to": _recipients(args.to), "status": args.status,
                "precedence": args.precedence, "text": args.text, "lang": args.lang}
    if args.kind == "cancel":
        original = await _original(session, args.api, args.ref)
        body = {"t": "cancel", "ref": args.ref, "reason": args.reason}
        for key in ("to", "status", "precedence", "incident"):
            body[key] = original[key]
        if args.text:
            body["text"], body["lang"] = args.text, args.lang
        return body
    body = {"t": args.kind, "track": _track(args, now), "expires": now + 3_600_000}
    if args.kind == "update":
        original = await _original(session, args.api, args.ref)
        body["ref"] = args.ref
        for key in ("to", "status", "precedence", "incident"):
            body[key] = original[key]
    else:
        body.update(to=_recipients(args.to), status=args.status, precedence=args.precedence,
                    incident=format_id(make_id(now, os.urandom(10))))
    if args.crossing:
        if args.crossing_in is None:
            raise UsageError("--crossing needs --crossing-in (seconds until the crossing)")
        body["predicted"] = {"border": args.crossing,
                             "crossing_at": now + int(args.crossing_in * 1000)}
    if args.advice:
        body["advice"] = args.advice
    if args.text:
        body["text"], body["lang"] = args.text, args.lang
    return body


def _client_tls(args: argparse.Namespace) -> ClientTls:
    tls = ClientTls(ca=args.ca, pin=parse_pin(args.pin) if args.pin else None,
                    cert=args.cert, key=args.key)
    if tls.configured and not args.api.lower().startswith("https://"):
        raise TlsError(f"--ca, --pin and --cert are for an https API, not {args.api}")
    return tls


async def _send(args: argparse.Namespace) -> int:
    api = args.api.rstrip("/")
    if not args.operator:
        raise UsageError(f"log in with --operator NAME (or ${OPERATOR_ENV}) and the password "
                         f"in --password-file or ${PASSWORD_ENV}")
    password = read_password(args.password_file, confirm=False)
    connector = client_connector(_client_tls(args))
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), connector=connector
    ) as session:
        try:
            session.headers.update(await log_in(session, api, args.operator, password))
            body = await _body(args, session)
            async with session.post(api + "/api/messages", json=body) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            refused = refusal_sentence(exc)
            if refused is not None:
                raise PeerCertificateRefused(refused) from exc
            raise NetworkError(network_sentence(exc, api, "the endpoint")) from exc
    if response.status != 202:
        field = f" ({answer.get('field')})" if answer.get("field") else ""
        print(f"{answer.get('error', response.status)}{field}: {answer.get('detail', answer)}")
        return 1
    print(answer["id"])
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_send(args))
