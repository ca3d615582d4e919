"""``audit verify`` lists every finding and tells the relay's faults from a corrupt bundle."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from hotline.auditlog.bundle import Bundle
from hotline.auditlog.checkpoint import Checkpoint, sign_checkpoint
from hotline.auditlog.cosignature import add_cosignature, cosign
from hotline.auditlog.merkle import leaf_hash
from hotline.auditlog.rules import Blame, Rule
from hotline.auditlog.tiles import decode_entry_bundle, encode_entry_bundle
from hotline.auditlog.verify import MAX_FINDINGS, BundleRule, VerifyReport, audit_bundle
from hotline.network import network_to_toml
from hotline.protocol.vocab import Stage
from tests.auditlog.logs import export, run_cli, write_log
from tests.auditlog.signed import NET, LogBuilder


def _bundle(root: Path, entries: list[bytes]) -> Path:
    write_log(root / "log", NET, entries)
    export(root / "log", NET, root / "bundle")
    return root / "bundle"


def _hostile_log() -> tuple[list[bytes], dict[int, str]]:
    """Sound traffic with three entries an honest relay refuses; their indices and rules."""
    log = LogBuilder()
    entries: list[bytes] = []
    bad: dict[int, str] = {}
    for n in range(40):
        warning = log.warning_body("BY", ("LT",))
        entries.append(log.entry(warning))
        if n == 5:
            bad[len(entries)] = Rule.RECEIPT_NOT_FROM_RECIPIENT
            entries.append(log.entry(log.receipt("LV", warning)))
        elif n == 17:
            bad[len(entries)] = Rule.RECEIPT_HASH_MISMATCH
            entries.append(log.entry(log.receipt("LT", warning, digest=b"\x22" * 32)))
            continue
        elif n == 30:
            bad[len(entries)] = Rule.LINK_FORBIDDEN
            entries.append(log.entry(log.warning_body("BY", ("EE",))))
        entries.append(log.entry(log.receipt("LT", warning)))
        entries.append(log.entry(log.receipt("LT", warning, Stage.ACKNOWLEDGED)))
    return entries, bad


def _found(report: VerifyReport) -> list[tuple[int, str, Blame]]:
    return [(f.index, f.rule, f.blame) for f in report.findings]


def test_every_entry_the_relay_should_have_refused_is_named(tmp_path: Path) -> None:
    """Three bad entries in a sound bundle: three relay findings by index and rule, none corrupt."""
    entries, bad = _hostile_log()
    report = audit_bundle(Bundle(_bundle(tmp_path, entries), NET.network))
    assert _found(report) == [(i, rule, Blame.RELAY) for i, rule in sorted(bad.items())]
    assert (report.relay_findings, report.corrupt_findings, report.ok) == (3, 0, False)


def test_the_cli_lists_the_relays_findings_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr: a count by blame, then one ``relay: entry N: rule: sentence`` line per finding."""
    entries, bad = _hostile_log()
    bundle = _bundle(tmp_path, entries)
    (bundle / "network.toml").write_text(network_to_toml(NET.network))
    capsys.readouterr()
    code, out, err = run_cli(["audit", "verify", str(bundle)], capsys)
    lines = err.splitlines()
    assert (code, out) == (1, "")
    assert lines[0].startswith(f"verify_failed: 3 finding(s) in {len(entries)} entries: 3 against")
    assert [line.split(": ")[:3] for line in lines[1:]] == [
        ["relay", f"entry {i}", rule] for i, rule in sorted(bad.items())
    ]


def test_a_damaged_entry_is_corruption_and_the_relays_findings_stand(tmp_path: Path) -> None:
    """A flipped byte is corrupt at its index; the tiles still prove the relay's findings."""
    entries, bad = _hostile_log()
    bundle = _bundle(tmp_path, entries)
    file = bundle / "tile" / "entries" / "000.p" / str(len(entries))
    stored = decode_entry_bundle(file.read_bytes())
    damaged = bytearray(stored[3])  # a warning, answered by the receipts at 4 and 5
    damaged[-5] ^= 0x01
    stored[3] = bytes(damaged)
    file.write_bytes(encode_entry_bundle(stored))
    report = audit_bundle(Bundle(bundle, NET.network))
    assert _found(report) == [
        (3, BundleRule.LEAF_MISMATCH, Blame.CORRUPT),
        (4, Rule.RECEIPT_UNKNOWN_REF, Blame.CORRUPT),
        (5, Rule.RECEIPT_UNKNOWN_REF, Blame.CORRUPT),
        *((i, rule, Blame.RELAY) for i, rule in sorted(bad.items())),
    ]


def test_findings_in_entries_the_relay_did_not_sign_are_not_held_against_it(
    tmp_path: Path,
) -> None:
    """An entry and its tile hash rewritten together: the root no longer matches, so the
    relay-looking finding in it is reported as corruption, with the tree mismatch."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    entries = [log.entry(warning), log.entry(log.receipt("LT", warning))]
    bundle = _bundle(tmp_path, entries)
    forged = log.entry(log.receipt("LV", warning))
    (bundle / "tile" / "entries" / "000.p" / "2").write_bytes(
        encode_entry_bundle([entries[0], forged])
    )
    (bundle / "tile" / "0" / "000.p" / "2").write_bytes(leaf_hash(entries[0]) + leaf_hash(forged))
    report = audit_bundle(Bundle(bundle, NET.network))
    assert _found(report) == [
        (1, Rule.RECEIPT_NOT_FROM_RECIPIENT, Blame.CORRUPT),
        (-1, BundleRule.TREE_MISMATCH, Blame.CORRUPT),
    ]
    assert "not evidence against the relay" in report.findings[0].sentence
    assert report.relay_findings == 0


def test_findings_are_bounded_and_all_counted(tmp_path: Path) -> None:
    """Over MAX_FINDINGS bad entries: the first MAX_FINDINGS are kept, every one is counted."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    count = MAX_FINDINGS + 30
    entries = [log.entry(warning)] + [
        log.entry(log.receipt("LV", warning)) for _ in range(count)
    ]
    report = audit_bundle(Bundle(_bundle(tmp_path, entries), NET.network), workers=1)
    assert len(report.findings) == MAX_FINDINGS
    assert report.relay_findings == count
    assert report.findings[-1].index == MAX_FINDINGS
    assert report.lines()[-1] == "… and 30 more finding(s) not shown"


def test_worker_processes_find_the_same(tmp_path: Path) -> None:
    """The parallel path reports the same findings as the in-process one."""
    entries, _ = _hostile_log()
    bundle = Bundle(_bundle(tmp_path, entries), NET.network)
    assert _found(audit_bundle(bundle, workers=2, parallel_from=1)) == _found(
        audit_bundle(bundle, workers=1)
    )


def test_a_checkpoint_forking_from_the_log_is_the_relays_fault(tmp_path: Path) -> None:
    """The relay signed another root for a size of this log: a finding against it."""
    log = LogBuilder()
    entries = [log.entry(log.warning_body("BY", ("LT",))) for _ in range(6)]
    bundle = Bundle(_bundle(tmp_path, entries), NET.network)
    origin = NET.network.relay.origin
    fork = sign_checkpoint(Checkpoint(origin, 4, b"\x01" * 32), origin, NET.keys["relay"])
    report = audit_bundle(bundle, extra_checkpoints=[fork])
    assert _found(report) == [(-1, BundleRule.CHECKPOINT_FORK, Blame.RELAY)]


def test_cosignatures_on_extra_checkpoints_are_verified(tmp_path: Path) -> None:
    """A --checkpoint's endpoint cosignatures count when sound and are findings when not."""
    log = LogBuilder()
    entries = [log.entry(log.warning_body("BY", ("LT",))) for _ in range(6)]
    bundle = Bundle(_bundle(tmp_path, entries), NET.network)
    origin = NET.network.relay.origin
    earlier = Checkpoint(origin, 4, bundle.subtree_hash(0, 4))
    note = sign_checkpoint(earlier, origin, NET.keys["relay"])
    good = add_cosignature(note, cosign(earlier.text(), "LT", NET.keys["LT"], 1_764_000_000))
    assert audit_bundle(bundle, extra_checkpoints=[good]).cosignatures == 1
    other = Checkpoint(origin, 4, b"\x02" * 32).text()
    bad = add_cosignature(good, cosign(other, "LV", NET.keys["LV"], 1_764_000_000))
    report = audit_bundle(bundle, extra_checkpoints=[bad])
    assert _found(report) == [(-1, BundleRule.COSIGNATURE_BAD, Blame.CORRUPT)]
    assert "LV's cosignature on checkpoint #1" in report.findings[0].sentence


def test_a_frame_with_a_bad_signature_in_a_signed_tree_is_corrupt(tmp_path: Path) -> None:
    """A logged envelope whose signature fails is named corrupt, and the rest is still checked."""
    log = LogBuilder()
    warning = log.warning_body("BY", ("LT",))
    kind, ts, frame = msgpack.unpackb(log.entry(warning))
    version, body, _ = msgpack.unpackb(frame)
    broken = msgpack.packb(
        [kind, ts, msgpack.packb([version, body, bytes(64)], use_bin_type=True)],
        use_bin_type=True,
    )
    entries = [broken, log.entry(log.warning_body("BY", ("EE",)))]
    report = audit_bundle(Bundle(_bundle(tmp_path, entries), NET.network))
    assert _found(report) == [
        (0, Rule.SIGNATURE_BAD, Blame.CORRUPT), (1, Rule.LINK_FORBIDDEN, Blame.RELAY)
    ]
