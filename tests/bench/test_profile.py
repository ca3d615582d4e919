"""The relay profile's parts: a sample is charged to what the relay was doing."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.profile import read_folded

LOOP = "BaseEventLoop._run_once (asyncio/base_events.py:1922);Handle._run (asyncio/events.py:80)"
COMMIT = (
    "GroupCommitter._write_batches (hotline/auditlog/groupcommit.py:158);"
    "_settle (hotline/auditlog/groupcommit.py:204);"
    "EmbeddedLog._done (hotline/relay/logbackend.py:147)"
)


def _parts(tmp_path: Path, *stacks: tuple[str, int]) -> dict[str, int]:
    folded = tmp_path / "profile.txt"
    folded.write_text("".join(f"{stack} {count}\n" for stack, count in stacks))
    return dict(read_folded(folded).by_part)


def test_work_handed_back_by_the_log_is_charged_to_the_relay(tmp_path: Path) -> None:
    """Signing an accepted receipt and the core's bookkeeping run inside the group committer's
    callback, but are the relay's: only the committer's own frames count as the append."""
    parts = _parts(
        tmp_path,
        (f"{LOOP};{COMMIT};Relay.logged (hotline/relay/server.py:493);"
         "RelayCore.appended (hotline/relay/core.py:611);"
         "SigningKey.sign (hotline/protocol/keys.py:150)", 5),
        (f"{LOOP};{COMMIT};Relay.logged (hotline/relay/server.py:493);"
         "RelayCore.appended (hotline/relay/core.py:609)", 3),
        (f"{LOOP};{COMMIT}", 2),
        ("Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83);"
         "GroupCommitter._append (hotline/auditlog/groupcommit.py:164);"
         "FileStore.append_batch (hotline/auditlog/filestore.py:220)", 4),
    )
    assert parts == {
        "Ed25519 signing (accepted receipts, checkpoints)": 5,
        "relay logic (core, admission, edge)": 3,
        "durable append (write, fsync, group commit)": 6,
    }
