"""``hotline audit report``: the per-link figures recomputed from a bundle alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hotline.auditlog.leaf import EntryKind, LogEvent, decode_entry, encode_event_entry
from hotline.figures import LinkFigures
from hotline.protocol.bodies import WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.testing.traffic import START_MS
from tests.auditlog.logs import entries_for, exported_bundle, run_cli
from tests.factories import make_network

NET = make_network()
TRAFFIC = 300


def _entries() -> list[bytes]:
    """Traffic from the shared helper, then events about its first warning."""
    entries = entries_for(NET, TRAFFIC)
    first = decode_entry(entries[0])
    assert first.envelope is not None
    warning = open_envelope(first.envelope, NET.network).body
    assert isinstance(warning, WarningBody)
    recipient = warning.to[-1]
    end = START_MS + TRAFFIC
    events = [
        LogEvent(EntryKind.REDELIVERED, {"ref": warning.id, "recipient": recipient, "attempt": 2}),
        LogEvent(EntryKind.OVERDUE, {"ref": warning.id, "recipient": recipient,
                                  "stage": "acknowledged", "deadline": end}),
        LogEvent(EntryKind.DISCONNECTED, {"party": "LT", "reason": "closed"}),
    ]
    return entries + [encode_event_entry(end + i, e) for i, e in enumerate(events)]


ENTRIES = _entries()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_bundle(tmp_path_factory.mktemp("report"), NET, ENTRIES)


_run = run_cli


def _direct() -> dict[str, Any]:
    figures = LinkFigures(NET.network)
    for index, entry in enumerate(ENTRIES):
        figures.add_entry(index, entry)
    snapshot: dict[str, Any] = json.loads(json.dumps(figures.snapshot()))
    return snapshot


def test_json_report_equals_the_accumulator_fed_the_same_entries(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON report is exactly LinkFigures' snapshot of the logged entries."""
    capsys.readouterr()
    code, out, _ = _run(["audit", "report", str(bundle), "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)
    direct = _direct()
    assert report["links"] == direct["links"]
    assert report == direct
    assert report["entries"] == len(ENTRIES)
    assert sum(row["messages"] for row in report["links"]) > 0
    assert sum(row["overdue"] + row["redelivered"] for row in report["links"]) == 2
    assert any(hop["answered"] for hop in report["hops"])


def test_exact_report_keeps_counts_and_differs_only_within_a_percent(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--exact gives exact nearest-rank percentiles: same counts, each within 1 % of the default."""
    capsys.readouterr()
    code, out, _ = _run(["audit", "report", str(bundle), "--format", "json", "--exact"], capsys)
    assert code == 0
    exact = json.loads(out)
    figures = LinkFigures(NET.network, exact=True)
    for index, entry in enumerate(ENTRIES):
        figures.add_entry(index, entry)
    assert exact == json.loads(json.dumps(figures.snapshot()))
    approximate = _direct()
    compared = 0
    for row, approx_row in zip(exact["links"], approximate["links"], strict=True):
        assert row["delivered"] == approx_row["delivered"]
        for name in ("delivery_ms", "ack_ms", "e2e_ms", "lead_time_s"):
            assert row[name]["count"] == approx_row[name]["count"]
            assert row[name]["max"] == approx_row[name]["max"]
            for p in ("p50", "p90", "p99"):
                if row[name][p] is not None:
                    compared += 1
                    assert abs(approx_row[name][p] - row[name][p]) <= abs(row[name][p]) / 100
    assert compared > 0


def test_report_with_an_explicit_network_agrees(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--network gives the same figures as the bundle's own network.toml."""
    network = str(bundle.parent / "network.toml")
    capsys.readouterr()
    code, out, _ = _run(
        ["audit", "report", str(bundle), "--network", network, "--format", "json"], capsys
    )
    assert code == 0
    assert json.loads(out) == _direct()


def test_text_report_names_every_link_hop_and_pair(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report has a line per link and per hop, and each pair's messages both ways."""
    capsys.readouterr()
    code, out, _ = _run(["audit", "report", str(bundle)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{NET.network.name}: {len(ENTRIES)} entries, as of ")
    direct = _direct()
    for row in direct["links"]:
        name = f"{row['from']}→{row['to']} "
        assert sum(line.startswith(name) for line in lines) == 1, name
    for hop in direct["hops"]:
        assert any(line.split()[:1] == [hop["endpoint"]] for line in lines)
    sent = {(r["from"], r["to"]): r["messages"] for r in direct["links"]}
    for (a, b), forth in sent.items():
        if a < b:
            assert f"{a}→{b} {forth} / {b}→{a} {sent[b, a]}" in out


def test_report_names_a_damaged_entry_and_exits_non_zero(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An entry altered in the bundle fails the report with its index, not a traceback."""
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    file = copy / "tile" / "entries" / "001.p/47"
    data = bytearray(file.read_bytes())
    data[100] ^= 0x10
    file.write_bytes(bytes(data))
    capsys.readouterr()
    code, out, err = _run(["audit", "report", str(copy), "--format", "json"], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("verify_failed: entry 256: ")
