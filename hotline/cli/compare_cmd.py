"""``hotline audit compare BUNDLE JOURNAL…``: what each endpoint was told, against the log.

``hotline audit compare BUNDLE BUNDLE…`` (every argument a bundle, one per relay
of a network of several relays) compares the relays' logs instead: every
message one log holds and another lacks, with the lacking relay's link-test
evidence of whether it could reach the sender then
(:class:`~hotline.figures.paths.PathLedger`). Exits 1 when a log lacks one.
Only messages logged before every bundle ends, less the 60 s evidence window,
are judged: bundles exported at different times differ at their ends, so what
one holds after another ends is listed apart ("after <relay>'s bundle ends")
and is no finding.

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

from hotline.auditlog.compare import Claims, compare
from hotline.auditlog.relay_bundles import open_relay_bundles
from hotline.cli.common import NetworkArg
from hotline.endpoint.alarms import AlarmKind
from hotline.endpoint.journal import JOURNAL_FILE
from hotline.endpoint.journal_paths import Claimed, path_claims
from hotline.errors import UsageError
from hotline.figures.paths import PathLedger, RelayLog
from hotline.network import Network

__all__ = ["add_compare", "read_claims"]

_RELAY_ALARMS = tuple(kind.value for kind in AlarmKind)


def add_compare(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare_p = verbs.add_parser(
        "compare", help="list every disagreement between endpoint journals and a bundle"
    )
    compare_p.add_argument("bundle", type=Path)
    compare_p.add_argument("journals", type=Path, nargs="+", metavar="JOURNAL",
                           help="an endpoint's journal file or data directory; or, to "
                                "compare relays, another relay's bundle")
    compare_p.add_argument("--format", choices=("text", "json"), default="text",
                           help="for bundles compared with bundles")
    compare_p.add_argument("--network", type=NetworkArg,
                           help="the network.toml to trust (with several relays, the whole "
                                "network's): each bundle is checked against its relay's key "
                                "there (default: each bundle's own)")
    compare_p.set_defaults(handler=run_compare)


def read_claims(path: Path, relay: str | None = None) -> Claims:
    """What the journal at ``path`` (a file, or a data directory holding one) was told.

    ``relay``: the relay whose log is compared; an endpoint of a network of several
    relays kept what each relay told it apart (journal_paths.py), and only that
    relay's claims and alarms are read.
    """
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
            per_relay = None if relay is None else _relay_claims(db, relay)
    except sqlite3.Error as exc:
        raise UsageError(f"{file} could not be read as a journal: {exc}") from exc
    if per_relay is not None:
        checkpoints, accepted, delivered = per_relay
        alarms = [(n, d) for n, d in alarms if _about_relay(str(d), relay)]
    return Claims(
        who=who,
        checkpoints=[(int(s), bytes(r)) for s, r in checkpoints],
        accepted=[(int(i), bytes(h), bytes(m)) for i, h, m in accepted],
        delivered=[(int(i), bytes(h), bytes(m)) for i, h, m in delivered],
        alarms=[(str(n), _sentence(str(d))) for n, d in alarms],
    )


def _relay_claims(db: sqlite3.Connection, relay: str) -> Claimed | None:
    has_paths = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'path_checkpoints'"
    ).fetchone()
    return None if has_paths is None else path_claims(db, relay)


def _about_relay(detail: str, relay: str | None) -> bool:
    with contextlib.suppress(ValueError, AttributeError):
        named = json.loads(detail).get("relay")
        return named is None or named == relay
    return True


def _sentence(detail: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(detail).get("sentence", detail))
    return detail


def _is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / "checkpoint").is_file() and not (path / JOURNAL_FILE).exists()


def _compare_relays(paths: list[Path], pinned: Network | None, as_json: bool) -> int:
    logs: list[RelayLog] = []
    for bundle in open_relay_bundles(paths, pinned):
        log = RelayLog(bundle.network.relay.id)
        for _index, entry in bundle.entries(bundle.checkpoint().size):
            log.add(entry, bundle.network)
        logs.append(log)
    ledger = PathLedger(logs)
    missing, after = ledger.missing(), ledger.after_end()
    if as_json:
        print(json.dumps({"relays": {log.relay: len(log.messages) for log in logs},
                          "missing": [m.as_dict() for m in missing],
                          "after_end": [m.as_dict() for m in after]}, indent=2))
    else:
        for item in missing:
            print(item.line())
        for item in after:
            print(item.line())
        counts = ", ".join(f"{log.relay} {len(log.messages)}" for log in logs)
        print(f"compared {len(logs)} relays' logs (messages: {counts}): "
              f"{len(missing)} message(s) missing from a log, {len(after)} logged after "
              "another bundle ends (not judged)")
    return 1 if missing else 0


def run_compare(args: argparse.Namespace) -> int:
    pinned = None if args.network is None else args.network.load()
    if all(_is_bundle(path) for path in args.journals):
        return _compare_relays([args.bundle, *args.journals], pinned, args.format == "json")
    (bundle,) = open_relay_bundles([args.bundle], pinned)
    size = bundle.checkpoint().size
    claims = [read_claims(path, bundle.network.relay.id) for path in args.journals]
    found = compare(bundle.entries(size), claims)
    for disagreement in found:
        print(disagreement.line())
    real = [d for d in found if d.kind != "alarm"]
    print(f"compared {len(claims)} journal(s) with {size} entries: "
          f"{len(real)} disagreement(s), {len(found) - len(real)} alarm(s) against the relay")
    return 1 if real else 0
