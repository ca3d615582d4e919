"""``hotline demo``: the relay and five endpoints on loopback, playing a scenario."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.log import STORE_DIR
from hotline.cli.common import Commands
from hotline.demo.runner import OFFICERS, Demo, run_until_stopped
from hotline.demo.scenario import builtin_scenario, load_scenario, scaled
from hotline.figures import LinkFigures, render_legend, render_text
from hotline.logs import configure_logging
from hotline.network import Network

__all__ = ["register"]


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "demo", help="run the whole network on loopback with a scenario of drone incidents"
    )
    p.add_argument("--data", type=Path, default=Path("demo-data"), help="where everything lives")
    p.add_argument("--base-port", type=int, default=8700,
                   help="the relay's port; endpoints take the next five")
    p.add_argument("--duration", type=float,
                   help="compress the scenario into this many seconds and stop "
                        "(default: play it, then run until Ctrl-C)")
    p.add_argument("--scenario", type=Path, help="a scenario JSON file (default: built in)")
    p.add_argument("--officers", choices=OFFICERS, default="scenario",
                   help="which messages the simulated duty officers acknowledge: none, the "
                        "scenario's (default: what you send by hand is yours to acknowledge), "
                        "or all")
    p.set_defaults(handler=run)


def log_size(data: Path) -> int:
    """How many entries the relay's log holds now (0 before the first run)."""
    if not (data / "relay" / STORE_DIR).exists():
        return 0
    store = FileStore(data / "relay" / STORE_DIR)
    try:
        return store.size
    finally:
        store.close()


def report_from_log(data: Path, network: Network, start: int = 0, end: int | None = None) -> str:
    """The per-link figures recomputed from the relay's log on disk, entries ``start`` to
    ``end`` (default: all of them)."""
    figures = LinkFigures(network)
    store = FileStore(data / "relay" / STORE_DIR)
    try:
        stop = store.size if end is None else min(end, store.size)
        for first in range(start, stop, 1024):
            for offset, entry in enumerate(store.read_range(first, min(stop, first + 1024))):
                figures.add_entry(first + offset, entry)
    finally:
        store.close()
    return render_text(figures.figures())


def run(args: argparse.Namespace) -> int:
    if not args.verbose:
        configure_logging(level=logging.WARNING)
    scenario = builtin_scenario() if args.scenario is None else load_scenario(args.scenario)
    if args.duration is not None:
        scenario = scaled(scenario, args.duration * 0.75)
    demo = Demo(args.data, args.base_port, scenario, officers=args.officers)
    start = log_size(args.data)
    print(f"hotline demo: {scenario.name}")
    print(f"  relay     {demo.relay_http}  (checkpoint, tiles, /v1/links, /metrics)")
    for party, port in demo.ports.items():
        print(f"  {party:<9} http://127.0.0.1:{port}/  ({demo.network.endpoints[party].name})  "
              f"log in as {demo.operator_name(party)}, password {demo.passwords[party]}")
    print(f"  passwords {args.data / 'operators'}/<ID>.password  (add operators with: "
          f"hotline operator add --data {args.data / 'endpoints'}/<ID> NAME)")
    print(f"  feeds     {args.data / 'feeds'}/<ID>.token  (Authorization: Bearer, for "
          "POST /api/alerts and /api/cap)")
    result = asyncio.run(run_until_stopped(demo, args.duration))
    end = result.log_end if result.log_end is not None else log_size(args.data)
    print()
    print(f"this run: log entries {start} to {max(start, end) - 1}, up to just before the "
          "shutdown (each hop's last state while running)")
    print(report_from_log(args.data, demo.network, start, end))
    print(render_legend())
    print(f"this run: {result.sent} messages sent by the scenario; the simulated officers "
          f"({args.officers}) gave {result.acknowledged} acknowledgements, one per message "
          "and recipient")
    for path, status in result.checks.items():
        print(f"  relay {path}: {status}")
    for failure in result.failures:
        print(f"  failed: {failure}")
    print(f"log: {args.data / 'relay'}  (hotline audit export {args.data / 'relay'} --out BUNDLE)")
    return 0 if result.ok else 1
