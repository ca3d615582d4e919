"""``hotline operator add``: a person who may log in to an endpoint's console.

The password is read from ``--password-file`` (its first line), else from the
environment variable ``HOTLINE_PASSWORD``, else asked for twice on the
terminal. It is stored only as an Argon2id hash in ``DATA/operators.json``
(mode 0600); adding a name again replaces its password and role.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from hotline.cli.common import Commands
from hotline.endpoint.operators import OperatorStore, Role
from hotline.errors import UsageError

__all__ = ["PASSWORD_ENV", "read_password", "register"]

PASSWORD_ENV = "HOTLINE_PASSWORD"  # noqa: S105  (the variable's name, not a password)


def register(commands: Commands) -> None:
    p = commands.add_parser("operator", help="manage the operators who may use a console")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an operator (or set their password and role)")
    add.add_argument("--data", required=True, type=Path, help="the endpoint's data directory")
    add.add_argument("name", help="the operator's name, signed into what they send")
    add.add_argument("--role", default=Role.OFFICER.value, choices=[r.value for r in Role],
                     help="officer sends and acknowledges, viewer only reads "
                          "(default: %(default)s)")
    add.add_argument("--password-file", type=Path,
                     help=f"read the password from this file's first line (default: "
                          f"${PASSWORD_ENV}, else ask)")
    add.set_defaults(handler=run_add)


def read_password(path: Path | None, *, confirm: bool) -> str:
    """The password from ``path``, ``$HOTLINE_PASSWORD`` or the terminal."""
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read the password file {path}: {exc}") from exc
        return lines[0] if lines else ""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"give the password with --password-file or ${PASSWORD_ENV}")
    password = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != password:
        raise UsageError("the two passwords differ")
    return password


def run_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_file, confirm=True)
    operator = OperatorStore(args.data).add(args.name, password, Role(args.role))
    print(f"operator {operator.name} ({operator.role.value}) can log in to the console "
          f"of the endpoint whose data is {args.data}")
    return 0
