"""Real file logs and bundles for the audit tests, written through AuditLog."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hotline.auditlog.bundle import export_bundle
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_envelope_entry, encode_event_entry
from hotline.auditlog.log import CHECKPOINT_FILE, STORE_DIR, AuditLog
from hotline.cli.main import main
from hotline.network import network_to_toml
from hotline.testing.traffic import START_MS, Traffic
from tests.factories import TestNet


def entries_for(net: TestNet, count: int) -> list[bytes]:
    """``count`` log entries: traffic envelopes, with a relay event every 50th."""
    frames = Traffic(net.network, net.keys).frames(count)
    out = []
    for i in range(count):
        if i % 50 == 7:
            event = LogEvent(EntryKind.CONNECTED, {"party": "LT"})
            out.append(encode_event_entry(START_MS + i, event))
        else:
            out.append(encode_envelope_entry(START_MS + i, next(frames)))
    return out


async def _write(directory: Path, net: TestNet, entries: list[bytes], concurrency: int) -> None:
    log = AuditLog.open_directory(
        directory, origin=net.network.relay.origin, key=net.keys["relay"]
    )
    try:
        it = iter(entries)

        async def appender() -> None:
            for entry in it:
                await log.append(entry)

        await asyncio.gather(*(appender() for _ in range(concurrency)))
        await asyncio.to_thread(log.checkpoint)
    finally:
        await log.close()


def write_log(directory: Path, net: TestNet, entries: list[bytes], concurrency: int = 8) -> None:
    """Append ``entries`` in order through group commit and sign a checkpoint."""
    asyncio.run(_write(directory, net, entries, concurrency))


def export(directory: Path, net: TestNet, out: Path) -> None:
    store = FileStore(directory / STORE_DIR)
    try:
        note = (directory / CHECKPOINT_FILE).read_bytes()
        toml = network_to_toml(net.network).encode()
        export_bundle(store, note, store.size, toml, out)
    finally:
        store.close()


def exported_bundle(root: Path, net: TestNet, entries: list[bytes]) -> Path:
    """A log of ``entries`` in ``root/relay`` (network.toml beside it), exported by the CLI."""
    (root / "network.toml").write_text(network_to_toml(net.network))
    write_log(root / "relay", net, entries)
    assert main(["audit", "export", str(root / "relay"), "--out", str(root / "bundle")]) == 0
    return root / "bundle"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``hotline ARGS`` in-process: exit status, stdout, stderr."""
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err
