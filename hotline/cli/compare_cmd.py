"""``hotline audit compare BUNDLE JOURNAL…``: what each endpoint was told, against the log.

Reads each endpoint's journal (its SQLite file, or the endpoint's data
directory; read-only, so it may be a copy or a running endpoint's) for the
checkpoints it witnessed, the indexes of its ``accepted`` receipts and of the
messages delivered to it, and the alarms it raised against the relay, and lists
every disagreement with the bundle (:mod:`hotline.auditlog.compare`). Exits 1
when anything disagrees.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
from pathlib import Path

from hotline.auditlog.bundle import Bundle
from hotline.auditlog.compare import Claims, compare
from hotline.endpoint.alarms import AlarmKind
from hotline.endpoint.journal import JOURNAL_FILE
from hotline.errors import UsageError

__all__ = ["add_compare", "read_claims"]

_RELAY_ALARMS = tuple(kind.value for kind in AlarmKind)


def add_compare(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare_p = verbs.add_parser(
        "compare", help="list every disagreement between endpoint journals and a bundle"
    )
    compare_p.add_argument("bundle", type=Path)
    compare_p.add_argument("journals", type=Path, nargs="+", metavar="JOURNAL",
                           help="an endpoint's journal file or data directory")
    compare_p.set_defaults(handler=run_compare)


def read_claims(path: Path) -> Claims:
    """What the journal at ``path`` (a file, or a data directory holding one) was told."""
    file = path / JOURNAL_FILE if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"{path} is not an endpoint journal (no {JOURNAL_FILE} there)")
    who = file.parent.name or str(file)
    marks = ",".join("?" * len(_RELAY_ALARMS))
    try:
        with contextlib.closing(sqlite3.connect(f"file:{file}?mode=ro", uri=True)) as db:
            checkpoints = db.execute(
                "SELECT size, root FROM checkpoints WHERE consistent = 1"
            ).fetchall()
            accepted = db.execute(
                "SELECT accepted_index, body_hash, id FROM outbox "
                "WHERE accepted_index IS NOT NULL"
            ).fetchall()
            delivered = db.execute(
                "SELECT deliver_index, body_hash, id FROM inbox WHERE deliver_index >= 0"
            ).fetchall()
            alarms = db.execute(
                f"SELECT name, detail FROM events WHERE name IN ({marks}) ORDER BY number",  # noqa: S608 - placeholders only
                _RELAY_ALARMS,
            ).fetchall()
    except sqlite3.Error as exc:
        raise UsageError(f"{file} could not be read as a journal: {exc}") from exc
    return Claims(
        who=who,
        checkpoints=[(int(s), bytes(r)) for s, r in checkpoints],
        accepted=[(int(i), bytes(h), bytes(m)) for i, h, m in accepted],
        delivered=[(int(i), bytes(h), bytes(m)) for i, h, m in delivered],
        alarms=[(str(n), _sentence(str(d))) for n, d in alarms],
    )


def _sentence(detail: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(detail).get("sentence", detail))
    return detail


def run_compare(args: argparse.Namespace) -> int:
    bundle = Bundle(args.bundle)
    size = bundle.checkpoint().size
    claims = [read_claims(path) for path in args.journals]
    found = compare(bundle.entries(size), claims)
    for disagreement in found:
        print(disagreement.line())
    real = [d for d in found if d.kind != "alarm"]
    print(f"compared {len(claims)} journal(s) with {size} entries: "
          f"{len(real)} disagreement(s), {len(found) - len(real)} alarm(s) against the relay")
    return 1 if real else 0
