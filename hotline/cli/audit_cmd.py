"""``hotline audit export|verify|prove|replay``: the auditor's tools.

Everything but ``export`` works on a bundle alone (plus, optionally, a
network.toml given with ``--network``). Long runs show a progress bar on a
terminal and stay quiet when piped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from hotline.auditlog.bundle import Bundle, export_bundle
from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.log import CHECKPOINT_FILE, STORE_DIR
from hotline.auditlog.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from hotline.auditlog.proofjson import consistency_json, inclusion_json
from hotline.auditlog.relay_bundles import open_relay_bundles
from hotline.auditlog.timeline import TimelineFilter, timeline
from hotline.auditlog.verify import audit_bundle
from hotline.cli.common import Commands, NetworkArg
from hotline.cli.compare_cmd import add_compare
from hotline.errors import ConfigError, NoteError, StoreError, UsageError
from hotline.figures import LinkFigures, render_text
from hotline.figures.paths import PathLedger, RelayLog, path_rows, render_paths
from hotline.figures.rows import Figures
from hotline.network import Network, network_to_toml
from hotline.protocol.ids import parse_id

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser("audit", help="export, verify, prove and replay the audit log")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    export = verbs.add_parser("export", help="write a relay's log as a tlog-tiles bundle")
    export.add_argument("logdir", type=Path, help="the relay's log directory")
    export.add_argument("--out", required=True, type=Path, help="the bundle directory to create")
    export.add_argument("--network", type=NetworkArg, help="network.toml (default: beside the log)")
    export.set_defaults(handler=run_export)

    verify = verbs.add_parser("verify", help="recompute and check everything in a bundle")
    verify.add_argument("bundle", type=Path)
    verify.add_argument("--network", type=NetworkArg, help="network.toml (default: the bundle's)")
    verify.add_argument(
        "--checkpoint", action="append", default=[], type=Path, metavar="FILE",
        help="an earlier signed checkpoint that must agree with the log (repeatable)",
    )
    verify.add_argument(
        "--full-schema", action="store_true",
        help="also check every signed body against the whole schema (slower)",
    )
    verify.set_defaults(handler=run_verify)

    prove = verbs.add_parser("prove", help="print an inclusion or consistency proof as JSON")
    prove.add_argument("bundle", type=Path)
    prove.add_argument("--network", type=NetworkArg)
    what = prove.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=int, help="the entry to prove included")
    what.add_argument("--consistency", nargs=2, type=int, metavar=("M", "N"))
    prove.add_argument("--size", type=int, help="the tree size (default: the checkpoint's)")
    prove.set_defaults(handler=run_prove)

    replay = verbs.add_parser("replay", help="print the timeline of a bundle")
    replay.add_argument("bundle", type=Path)
    replay.add_argument("--network", type=NetworkArg)
    replay.add_argument("--link", help="only traffic between two endpoints, e.g. BY-LT")
    replay.add_argument("--incident", help="only this incident id")
    replay.add_argument("--since", help="from this time (ISO 8601 or Unix ms)")
    replay.add_argument("--until", help="up to this time (ISO 8601 or Unix ms)")
    replay.add_argument("--format", choices=("text", "jsonl", "csv"), default="text")
    replay.set_defaults(handler=run_replay)

    report = verbs.add_parser(
        "report", help="compute the per-link figures from a bundle (or, per path, from the "
                       "bundles of several relays of one network)")
    report.add_argument("bundle", type=Path, nargs="+",
                        help="a relay's bundle; several: one per relay, compared path by path")
    report.add_argument("--network", type=NetworkArg,
                        help="network.toml (default: the bundle's); with several bundles, the "
                             "whole network's, pinning every relay's key")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.add_argument(
        "--exact", action="store_true",
        help="exact percentiles from every sample (memory grows with the log), instead of "
             "the relay's histograms (within 0.4%%, the figures the relay serves)",
    )
    report.set_defaults(handler=run_report)

    add_compare(verbs)


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    bar = tqdm(total=total, unit=" entries", desc=what, disable=not sys.stderr.isatty(),
               file=sys.stderr, leave=False)
    def advance(count: int) -> None:
        bar.update(count)

    try:
        yield advance
    finally:
        bar.close()


def _network_for_log(logdir: Path, arg: NetworkArg | None) -> tuple[Network, bytes]:
    if arg is not None:
        return arg.load(), arg.file.read_bytes()
    for candidate in (logdir / "network.toml", logdir.parent / "network.toml"):
        if candidate.is_file():
            return NetworkArg(str(candidate)).load(), candidate.read_bytes()
    raise ConfigError(f"no network.toml in or beside {logdir}; pass --network")


def run_export(args: argparse.Namespace) -> int:
    logdir: Path = args.logdir
    network, toml = _network_for_log(logdir, args.network)
    note_path = logdir / CHECKPOINT_FILE
    if not note_path.is_file() or not (logdir / STORE_DIR).is_dir():
        raise UsageError(f"{logdir} is not a relay log directory (no {CHECKPOINT_FILE} or store/)")
    note = note_path.read_bytes()
    if network.multipath:
        # several relays: this log is the one whose origin the checkpoint names; the bundle
        # holds that relay's view of the network, as the relay itself runs with
        origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        relay = next((r for r in network.all_relays if r.origin == origin), None)
        if relay is None:
            raise StoreError(f"{note_path} names the origin {origin!r}, no relay of the network")
        network = network.for_relay(relay.id)
        toml = network_to_toml(network).encode("utf-8")
    try:
        checkpoint = open_checkpoint(
            note, network.relay.origin, [p.key for p in network.relay.periods]
        )
    except NoteError as exc:
        raise StoreError(f"{note_path} is not signed by this network's relay: {exc}") from exc
    store = FileStore(logdir / STORE_DIR)
    try:
        if store.size < checkpoint.size:
            raise StoreError(
                f"the store holds {store.size} entries, fewer than the checkpoint's "
                f"{checkpoint.size}"
            )
        with _progress(checkpoint.size, "export") as progress:
            export_bundle(store, note, checkpoint.size, toml, args.out, progress=progress)
    finally:
        store.close()
    print(f"exported {checkpoint.size} entries to {args.out}")
    return 0


def _bundle(args: argparse.Namespace, path: Path | None = None) -> Bundle:
    """The bundle; with a --network of several relays, read by its relay's key from it."""
    path = args.bundle if path is None else path
    if args.network is None:
        return Bundle(path)
    network = args.network.load()
    if network.multipath:
        (bundle,) = open_relay_bundles([path], network)
        return bundle
    return Bundle(path, network)


def run_verify(args: argparse.Namespace) -> int:
    bundle = _bundle(args)
    extras = [path.read_bytes() for path in args.checkpoint]
    size = bundle.checkpoint().size
    with _progress(size, "verify") as progress:
        report = audit_bundle(
            bundle, extra_checkpoints=extras, full_schema=args.full_schema, progress=progress
        )
    if report.ok:
        print(report.summary())
        return 0
    sys.stderr.write(f"verify_failed: {report.summary()}\n")
    for line in report.lines():
        sys.stderr.write(line + "\n")
    return 1


def run_prove(args: argparse.Namespace) -> int:
    bundle = _bundle(args)
    checkpoint = bundle.checkpoint()
    if args.index is not None:
        size = checkpoint.size if args.size is None else args.size
        if not 0 < size <= checkpoint.size:
            raise UsageError(f"--size must be between 1 and the checkpoint's {checkpoint.size}")
        if not 0 <= args.index < size:
            raise UsageError(f"--index must be below the tree size {size}")
        leaf = leaf_hash(bundle.entry(args.index))
        root = bundle.subtree_hash(0, size)
        proof = inclusion_proof(args.index, size, bundle.subtree_hash)
        verify_inclusion(leaf, args.index, size, proof, root)
        out = inclusion_json(args.index, size, leaf, root, proof)
    else:
        old, new = args.consistency
        if not 0 < old <= new <= checkpoint.size:
            raise UsageError(
                f"--consistency needs 0 < M <= N <= the checkpoint's size {checkpoint.size}"
            )
        old_root, new_root = bundle.subtree_hash(0, old), bundle.subtree_hash(0, new)
        proof = consistency_proof(old, new, bundle.subtree_hash)
        verify_consistency(old, new, old_root, new_root, proof)
        out = consistency_json(old, new, old_root, new_root, proof)
    print(json.dumps(out, indent=2))
    return 0


def _time_arg(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is neither ISO 8601 nor Unix milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def run_replay(args: argparse.Namespace) -> int:
    bundle = _bundle(args)
    link = None
    if args.link is not None:
        parts = args.link.split("-")
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"--link {args.link!r} must be two endpoint ids joined by '-'")
        link = (parts[0], parts[1])
    incident = None
    if args.incident is not None:
        try:
            parse_id(args.incident)
        except ValueError:
            raise UsageError(f"--incident {args.incident!r} is not a UUID") from None
        incident = args.incident
    filters = TimelineFilter(
        link, incident, _time_arg(args.since, "--since"), _time_arg(args.until, "--until")
    )
    size = bundle.checkpoint().size
    rows = timeline(bundle.entries(size), bundle.network, filters)
    out = sys.stdout
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
    elif args.format == "csv":
        writer = csv.writer(out)
        writer.writerow(["index", "time", "kind", "from", "to", "id", "ref", "incident",
                         "precedence", "status", "stage", "summary"])
        for row in rows:
            writer.writerow([row.index, _iso(row.relay_ts), row.kind, row.sender,
                             " ".join(row.recipients), row.id, row.ref, row.incident,
                             row.precedence, row.status, row.stage, row.summary])
    else:
        for row in rows:
            to = ",".join(row.recipients) or "-"
            flags = " ".join(f for f in (row.precedence.upper(), row.status.upper()) if f)
            out.write(
                f"{_iso(row.relay_ts)}  #{row.index:<7} {row.kind:<13} {row.sender:>6} → {to:<12}"
                f" {flags:<18} {row.summary}\n"
            )
    return 0


def _figures_of(bundle: Bundle, exact: bool, log: RelayLog | None = None) -> LinkFigures:
    size = bundle.checkpoint().size
    figures = LinkFigures(bundle.network, exact=exact)
    with _progress(size, "report") as progress:
        for index, entry in bundle.entries(size):
            figures.add_entry(index, entry)
            if log is not None:
                log.add(entry, bundle.network)
            progress(1)
    return figures


def run_report(args: argparse.Namespace) -> int:
    paths: list[Path] = args.bundle
    if len(paths) > 1:
        return _report_paths(args, paths)
    bundle = _bundle(args, paths[0])
    figures = _figures_of(bundle, args.exact)
    if args.format == "json":
        print(json.dumps(figures.snapshot(), indent=2))
        return 0
    result = figures.figures()
    as_of = "-" if result.as_of is None else _iso(result.as_of)
    print(f"{bundle.network.name}: {result.entries} entries, as of {as_of}")
    print()
    sys.stdout.write(render_text(result))
    return 0


def _report_paths(args: argparse.Namespace, paths: list[Path]) -> int:
    """Several relays' bundles: each relay's figures, then every link path by path."""
    results: dict[str, Figures] = {}
    logs: list[RelayLog] = []
    pinned = None if args.network is None else args.network.load()
    for bundle in open_relay_bundles(paths, pinned):
        relay = bundle.network.relay.id
        log = RelayLog(relay)
        results[relay] = _figures_of(bundle, args.exact, log).figures()
        logs.append(log)
    firsts = PathLedger(logs).firsts()
    if args.format == "json":
        print(json.dumps({
            "relays": {relay: result.as_dict() for relay, result in results.items()},
            "paths": path_rows(results, firsts),
        }, indent=2))
        return 0
    for relay, result in results.items():
        as_of = "-" if result.as_of is None else _iso(result.as_of)
        print(f"relay {relay}: {result.entries} entries, as of {as_of}")
        print()
        sys.stdout.write(render_text(result))
        print()
    print("per path (each link once per relay; first: messages that relay delivered to the "
          "recipient first, from the recipient's signed receipts)")
    print()
    sys.stdout.write(render_paths(results, firsts))
    return 0
