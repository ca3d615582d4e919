"""The ``hotline`` command: one entry point, a sub-command per part.

Every :class:`~hotline.errors.HotlineError` is printed as ``code: sentence`` on
stderr with exit status 1, or 2 when the local side asked for something that
cannot be done (a UsageError); a traceback only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from hotline.cli import (
    audit_cmd,
    demo_cmd,
    endpoint_cmd,
    envelope_cmd,
    feed_cmd,
    init_cmd,
    keys_cmd,
    operator_cmd,
    relay_cmd,
    send_cmd,
    tls_cmd,
)
from hotline.errors import HotlineError, UsageError
from hotline.logs import configure_logging

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="A secure deconfliction hotline: signed, acknowledged, logged warnings.",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        init_cmd, envelope_cmd, audit_cmd, relay_cmd, endpoint_cmd, demo_cmd, send_cmd, feed_cmd,
        tls_cmd, operator_cmd,
    ):
        module.register(commands)
    keys_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    handler: Handler = args.handler
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
    except HotlineError as exc:
        if args.verbose:
            raise
        print(exc.describe(), file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`hotline envelope verify … | head`): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    return status


if __name__ == "__main__":
    sys.exit(main())
