"""``hotline feed-token``: a new sensor feed, its token printed once and stored hashed.

Appends a ``[[feeds]]`` entry (name, SHA-256 of the token, rate, and optionally
default recipients and status) to the feeds file, creating it with mode 0600,
and prints the token on standard output: it is shown this once and never
stored. A running endpoint reads the changed file on the feed's first request.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotline.cli.common import Commands
from hotline.endpoint.feedconfig import DEFAULT_RATE_PER_MINUTE, append_feed, new_token
from hotline.errors import UsageError
from hotline.protocol.vocab import Status

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "feed-token", help="add a sensor feed to a feeds file and print its new bearer token"
    )
    p.add_argument("--feeds", required=True, type=Path,
                   help="the feeds file (an endpoint's DATA/feeds.toml or its --feeds)")
    p.add_argument("--name", required=True, help="the feed's name, e.g. radar-1")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_MINUTE,
                   help=f"alerts a minute (default {DEFAULT_RATE_PER_MINUTE})")
    p.add_argument("--to", help="default recipients of its alerts: * or ids such as BY,PL "
                                "(default *)")
    p.add_argument("--status", choices=[s.value for s in Status],
                   help="default status of its alerts (default actual)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    to = None
    if args.to is not None:
        to = [party.strip() for party in args.to.split(",") if party.strip()]
        if not to:
            raise UsageError("--to must be * or endpoint ids separated by commas")
    token = new_token()
    feed = append_feed(
        args.feeds,
        args.name,
        token,
        rate_per_minute=args.rate,
        to=to,
        status=None if args.status is None else Status(args.status),
    )
    print(token)
    print(f"feed {feed.name} added to {args.feeds} ({feed.rate_per_minute:g} alerts a minute); "
          "the token above is shown only now", file=sys.stderr)
    return 0
