"""``hotline audit export|verify|prove|replay`` as an auditor uses them."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from hotline.auditlog.merkle import leaf_hash, verify_consistency, verify_inclusion
from hotline.testing.traffic import START_MS
from tests.auditlog.logs import entries_for, exported_bundle, run_cli
from tests.factories import make_network

NET = make_network()
SIZE = 300
ENTRIES = entries_for(NET, SIZE)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_bundle(tmp_path_factory.mktemp("audit"), NET, ENTRIES)


_run = run_cli


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def test_export_then_verify_prints_one_line(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify exits 0 with a one-line summary naming the size and root."""
    code, out, _ = _run(["audit", "verify", str(bundle)], capsys)
    assert code == 0
    assert out.startswith(f"ok: {SIZE} entries")
    assert out.count("\n") == 1


def test_verify_can_check_the_whole_schema(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--full-schema also passes a sound bundle."""
    code, out, _ = _run(["audit", "verify", "--full-schema", str(bundle)], capsys)
    assert (code, out.startswith("ok:")) == (0, True)


def test_verify_names_the_bad_entry_and_exits_non_zero(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged bundle: exit 1, and stderr counts the findings and names the entry by index."""
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    file = copy / "tile" / "entries" / "001.p/44"
    data = bytearray(file.read_bytes())
    data[100] ^= 0x10
    file.write_bytes(bytes(data))
    code, out, err = _run(["audit", "verify", str(copy)], capsys)
    assert code == 1
    assert out == ""
    first, *rest = err.splitlines()
    assert first.startswith("verify_failed: 1 finding(s) in 300 entries: 0 against the relay")
    assert len(rest) == 1
    assert rest[0].startswith("corrupt: entry 2")
    assert "leaf_mismatch" in rest[0]
    assert "\r" not in err  # no progress bar when not on a terminal


def test_export_refuses_a_non_empty_directory(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exporting over an existing bundle changes nothing and says why."""
    relay = bundle.parent / "relay"
    code, _, err = _run(["audit", "export", str(relay), "--out", str(bundle)], capsys)
    assert code == 2
    assert "is not empty" in err


@pytest.mark.parametrize(("index", "size"), [(0, 300), (255, 300), (256, 300), (299, 300), (7, 8)])
def test_prove_inclusion_prints_a_proof_that_verifies(
    bundle: Path, index: int, size: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed inclusion proof verifies for the entry's leaf hash and the root."""
    code, out, _ = _run(
        ["audit", "prove", str(bundle), "--index", str(index), "--size", str(size)], capsys
    )
    assert code == 0
    proof = json.loads(out)
    assert set(proof) == {"index", "size", "leaf_hash", "root", "proof"}
    assert _b64(proof["leaf_hash"]) == leaf_hash(ENTRIES[index])
    verify_inclusion(
        leaf_hash(ENTRIES[index]), index, size, [_b64(h) for h in proof["proof"]],
        _b64(proof["root"]),
    )


@pytest.mark.parametrize(("old", "new"), [(1, 300), (256, 300), (100, 257), (300, 300)])
def test_prove_consistency_prints_a_proof_that_verifies(
    bundle: Path, old: int, new: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed consistency proof verifies between the two printed roots."""
    args = ["audit", "prove", str(bundle), "--consistency", str(old), str(new)]
    code, out, _ = _run(args, capsys)
    assert code == 0
    proof = json.loads(out)
    assert set(proof) == {"old_size", "new_size", "old_root", "new_root", "proof"}
    verify_consistency(
        old, new, _b64(proof["old_root"]), _b64(proof["new_root"]),
        [_b64(h) for h in proof["proof"]],
    )


def test_prove_refuses_sizes_beyond_the_checkpoint(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for a tree larger than the signed one is a usage error."""
    code, _, err = _run(["audit", "prove", str(bundle), "--index", "1", "--size", "301"], capsys)
    assert code == 2
    assert "--size" in err


def test_replay_lists_every_entry_in_order(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON-lines timeline has one row per entry, in log order."""
    code, out, _ = _run(["audit", "replay", str(bundle), "--format", "jsonl"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in rows] == list(range(SIZE))
    kinds = {r["kind"] for r in rows}
    assert {"warning", "receipt", "test", "connected"} <= kinds
    receipt = next(r for r in rows if r["kind"] == "receipt")
    assert receipt["stage"] in ("delivered", "acknowledged")
    assert receipt["to"]


def test_replay_filters_by_link_incident_and_time(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--link keeps traffic between two endpoints either way; --since/--until bound time."""
    _, out, _ = _run(["audit", "replay", str(bundle), "--format", "jsonl", "--link", "BY-LT"],
                     capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows
    for row in rows:
        assert {row["from"], *row["to"]} >= {"BY", "LT"} or (
            row["from"] in ("BY", "LT") and set(row["to"]) & {"BY", "LT"}
        )
    incident = next(r["incident"] for r in rows if r["incident"])
    _, out, _ = _run(["audit", "replay", str(bundle), "--format", "jsonl", "--incident",
                      incident], capsys)
    assert {json.loads(line)["incident"] for line in out.splitlines()} == {incident}
    _, out, _ = _run(["audit", "replay", str(bundle), "--format", "jsonl",
                      "--since", str(START_MS + 10), "--until", str(START_MS + 19)], capsys)
    assert [json.loads(line)["index"] for line in out.splitlines()] == list(range(10, 20))


def test_replay_writes_csv_and_text(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CSV has a header and one row per entry; text has one line per entry."""
    _, out, _ = _run(["audit", "replay", str(bundle), "--format", "csv"], capsys)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:4] == ["index", "time", "kind", "from"]
    assert len(rows) == SIZE + 1
    _, out, _ = _run(["audit", "replay", str(bundle)], capsys)
    assert len(out.splitlines()) == SIZE
    assert "FLASH" in out


def test_replay_refuses_a_bad_filter(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --link or --incident is a usage error naming the flag."""
    code, _, err = _run(["audit", "replay", str(bundle), "--link", "BYLT"], capsys)
    assert (code, "--link" in err) == (2, True)
    code, _, err = _run(["audit", "replay", str(bundle), "--incident", "nope"], capsys)
    assert (code, "--incident" in err) == (2, True)
