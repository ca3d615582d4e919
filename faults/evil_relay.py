"""A hostile relay for tests: the real relay, holding the real relay key, with one attack on.

:class:`EvilRelay` is :class:`hotline.relay.server.Relay` with a switch per way
a relay operator can cheat. It speaks the documented session protocol to real
endpoints, signs with the network's relay key, and keeps its real log; once
:attr:`EvilRelay.armed` is set it cheats on the traffic of one sender (the
``victim``, BY) to one recipient (the ``target``, LT), or on its HTTP side:

======================  =====================================================================
attack                  what the relay does
======================  =====================================================================
withhold_accepted       logs and delivers the victim's messages, never answers ``accepted``
unsigned_refusal        answers the victim's message with a ``rejected`` it did not sign
unfounded_refusal       answers it with a relay-signed refusal the victim can disprove
never_forward           logs and accepts, never delivers to the target
hold_back               delivers to the target 8 s late (a FLASH is due in 5 s)
reorder                 holds the victim's first message until its second is delivered
replay                  logs a delivered message a second time and delivers it again
omit_from_log           answers ``accepted`` naming an index that holds another entry
beyond_tree             answers ``accepted`` naming an index its tree never reaches
split_view              from arming on, shows LV, EE and PL a history with one extra entry
refuse_consistency      answers every consistency proof with 503
refuse_entries          answers every entry tile with 503 (no inclusion can be checked)
freeze_checkpoint       signs no new checkpoint while it goes on delivering
receipt_non_recipient   logs EE's receipt for a message EE never received
receipt_wrong_hash      logs LT's receipt whose hash is not the message's
======================  =====================================================================

The last two stand for a compromised endpoint whose bad receipt an honest relay
refuses: the harness signs it (it holds the key) and :meth:`EvilRelay.inject`
logs it. Nothing here is used by the product; it lives with the fault runs.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from hotline.auditlog.checkpoint import Checkpoint, sign_checkpoint
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_envelope_entry, encode_event_entry
from hotline.auditlog.log import AuditLog
from hotline.auditlog.merkle import ListHasher, consistency_proof, leaf_hash
from hotline.auditlog.proofjson import consistency_json
from hotline.auditlog.tiles import TILE_WIDTH, encode_entry_bundle, parse_tile_path
from hotline.errors import HotlineError, RejectCode, Rejected
from hotline.protocol.bodies import AcceptedBody, CancelBody, RefusedBody, TextBody, WarningBody
from hotline.protocol.envelope import Envelope, open_envelope, seal
from hotline.protocol.ids import make_id
from hotline.protocol.session import (
    Accepted,
    CheckpointNote,
    Deliver,
    RejectedNotice,
    Welcome,
    decode_control,
    encode_control,
)
from hotline.relay.core import Append, Broadcast, Close, LogLine, RelayAction, Send
from hotline.relay.server import Relay, RelayConfig, create_app

__all__ = ["HOLD_S", "Attack", "EvilRelay", "evil_app"]

HOLD_S: Final = 8.0
"""How long ``hold_back`` keeps a message from its recipient."""

SPLIT_GROUP: Final = frozenset({"LV", "EE", "PL"})
"""The endpoints ``split_view`` shows the other history."""


class Attack(enum.StrEnum):
    WITHHOLD_ACCEPTED = "withhold_accepted"
    UNSIGNED_REFUSAL = "unsigned_refusal"
    UNFOUNDED_REFUSAL = "unfounded_refusal"
    NEVER_FORWARD = "never_forward"
    HOLD_BACK = "hold_back"
    REORDER = "reorder"
    REPLAY = "replay"
    OMIT_FROM_LOG = "omit_from_log"
    BEYOND_TREE = "beyond_tree"
    SPLIT_VIEW = "split_view"
    REFUSE_CONSISTENCY = "refuse_consistency"
    REFUSE_ENTRIES = "refuse_entries"
    FREEZE_CHECKPOINT = "freeze_checkpoint"
    RECEIPT_NON_RECIPIENT = "receipt_non_recipient"
    RECEIPT_WRONG_HASH = "receipt_wrong_hash"


_ROUTED = (WarningBody, CancelBody, TextBody)


@dataclass(slots=True)
class _Fork:
    """The other history ``split_view`` shows: the real one with one entry inserted."""

    at: int  # the real index the extra entry stands before
    entries: list[bytes]
    leaves: list[bytes]

    def shifted(self, index: int) -> int:
        return index if index < self.at else index + 1


class EvilRelay(Relay):
    """The real relay with one attack; inert until :attr:`armed` is set."""

    def __init__(
        self, config: RelayConfig, audit_log: AuditLog, attack: Attack | None,
        victim: str = "BY", target: str = "LT",
    ) -> None:
        super().__init__(config, audit_log)
        self.attack = attack
        self.victim = victim
        self.target = target
        self.armed = False
        self.touched: list[str] = []  # what the relay did, for the run's record
        self._held: dict[bytes, bytes] = {}  # message id → its deliver, for reorder/hold_back
        self._released: set[bytes] = set()
        self._replayed = False
        self._fork: _Fork | None = None
        self._fork_sent = 0  # the size of the last other-history checkpoint sent
        self.routed_ids: set[bytes] = set()  # the victim's routed messages seen armed
        self.routed_frames: dict[bytes, bytes] = {}  # every routed message of the victim
        self._frame_seen = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the session side

    def perform(self, actions: Iterable[RelayAction]) -> None:
        actions = list(actions)
        for action in actions:
            if isinstance(action, Append) and action.envelope is not None:
                body = action.envelope.body
                if body.sender == self.victim and isinstance(body, _ROUTED):
                    self.routed_frames[body.id] = action.envelope.frame
                    self._frame_seen.set()
        if not self.armed or self.attack is None:
            super().perform(actions)
            return
        out: list[RelayAction] = []
        for action in actions:
            out.extend(self._cheat(action))
        super().perform(out)

    def _cheat(self, action: RelayAction) -> list[RelayAction]:
        attack = self.attack
        if isinstance(action, Append):
            envelope = action.envelope
            if (
                envelope is not None
                and envelope.body.sender == self.victim
                and isinstance(envelope.body, _ROUTED)
            ):
                self.routed_ids.add(envelope.body.id)
                return self._cheat_append(action, envelope)
            return [action]
        if isinstance(action, Broadcast):
            return self._cheat_broadcast(action)
        if isinstance(action, Close | LogLine):
            return [action]
        control = decode_control(action.data)
        if (
            attack is Attack.WITHHOLD_ACCEPTED
            and action.party == self.victim
            and isinstance(control, Accepted)
            and _accepts_routed(control.frame, self)
        ):
            self.touched.append("withheld accepted")
            return []
        if isinstance(control, Deliver) and action.party == self.target:
            return self._cheat_deliver(action, control)
        if self._fork is not None and action.party in SPLIT_GROUP:
            return [self._shift_for_group(action, control)]
        return [action]

    def _cheat_append(self, action: Append, envelope: Envelope) -> list[RelayAction]:
        attack, body = self.attack, envelope.body
        if attack is Attack.UNSIGNED_REFUSAL:
            self.touched.append(f"unsigned refusal of {body.id.hex()}")
            notice = RejectedNotice(body.id, "link_forbidden", "there is no link", "")
            return [Send(self.victim, encode_control(notice))]
        if attack is Attack.UNFOUNDED_REFUSAL:
            self.touched.append(f"signed unfounded refusal of {body.id.hex()}")
            return [Send(self.victim, self._signed_refusal(envelope))]
        if attack in (Attack.OMIT_FROM_LOG, Attack.BEYOND_TREE):
            size = self.log.size
            index = max(0, size - 1) if attack is Attack.OMIT_FROM_LOG else size + 100_000
            self.touched.append(f"accepted {body.id.hex()} at index {index}, not logged")
            return [Send(self.victim, self._accepted(envelope, index, action.relay_ts))]
        return [action]

    def _cheat_deliver(self, action: Send, control: Deliver) -> list[RelayAction]:
        attack = self.attack
        try:
            envelope = open_envelope(control.frame, self.network, max_size=1 << 30)
        except Rejected:
            return [action]
        body = envelope.body
        if body.sender != self.victim or not isinstance(body, _ROUTED):
            return [action]
        if attack is Attack.NEVER_FORWARD:
            self.touched.append(f"never forwarded {body.id.hex()}")
            return []
        if attack is Attack.HOLD_BACK:
            if body.id in self._released:
                return [action]
            if body.id not in self._held:
                self._held[body.id] = action.data
                self.touched.append(f"held {body.id.hex()} for {HOLD_S} s")
                self._later(HOLD_S, self._release(body.id, action.party))
            return []
        if attack is Attack.REORDER:
            if not self._held and not self._released:
                self._held[body.id] = action.data
                self.touched.append(f"held {body.id.hex()} behind the next one")
                return []
            if self._held and body.id not in self._held:
                first_id, first = next(iter(self._held.items()))
                self._held.clear()
                self._released.add(first_id)
                return [action, Send(action.party, first)]
            return [action]
        if attack is Attack.REPLAY and not self._replayed:
            self._replayed = True
            self._later(1.0, self._replay(control.frame, action.party))
            return [action]
        return [action]

    async def _release(self, ident: bytes, party: str) -> None:
        data = self._held.pop(ident, None)
        self._released.add(ident)
        if data is not None:
            self.send_now(party, data)

    async def _replay(self, frame: bytes, party: str) -> None:
        index = await self.log.append(encode_envelope_entry(self.config.clock(), frame))
        self.touched.append(f"logged a delivered message again at index {index}")
        self.send_now(party, encode_control(Deliver(index, frame)))

    async def frame_of(self, ident: bytes) -> bytes:
        """The frame of the victim's message ``ident``, once it has arrived here."""
        while ident not in self.routed_frames:
            self._frame_seen.clear()
            await self._frame_seen.wait()
        return self.routed_frames[ident]

    def send_now(self, party: str, data: bytes) -> None:
        connection = self._connections.get(party)
        if connection is not None:
            self._offer(connection, data)

    def _later(self, delay_s: float, work: Awaitable[None]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _accepted(self, envelope: Envelope, index: int, relay_ts: int) -> bytes:
        body = AcceptedBody(
            id=make_id(relay_ts, os.urandom(10)), sender=self.network.relay.id, ts=relay_ts,
            seq=index, kid=self.config.key.public.kid, ref=envelope.body.id,
            hash=envelope.hash, index=index,
        )
        return encode_control(Accepted(seal(body, self.config.key)))

    def _signed_refusal(self, envelope: Envelope) -> bytes:
        """A relay-signed refusal with a code the sender can disprove (link_forbidden)."""
        now = self.config.clock()
        sentence = "there is no link to the recipient"
        body = RefusedBody(
            id=make_id(now, os.urandom(10)), sender=self.network.relay.id, ts=now,
            seq=now * 1000, kid=self.config.key.public.kid, ref=envelope.body.id,
            hash=envelope.hash, frame_hash=hashlib.sha256(envelope.frame).digest(),
            code=RejectCode.LINK_FORBIDDEN, sentence=sentence,
        )
        signed = seal(body, self.config.key)
        return encode_control(RejectedNotice(envelope.body.id, "link_forbidden", sentence, "",
                                             frame=signed))

    # ------------------------------------------------------------------ injected entries

    async def inject(self, frame: bytes, deliver_to: str) -> int:
        """Log ``frame`` as it is, without admission, and deliver it to ``deliver_to``."""
        index = await self.log.append(encode_envelope_entry(self.config.clock(), frame))
        self.touched.append(f"logged an envelope an honest relay refuses at index {index}")
        self.send_now(deliver_to, encode_control(Deliver(index, frame)))
        return index

    # ------------------------------------------------------------------ checkpoints

    async def _maybe_checkpoint(self, now: int) -> None:
        if self.armed and self.attack is Attack.FREEZE_CHECKPOINT:
            if not self.touched:
                self.touched.append("froze its checkpoint")
            return
        if self.armed and self.attack is Attack.SPLIT_VIEW and self._fork is None:
            self._start_fork()
        await super()._maybe_checkpoint(now)
        if self._fork is not None:
            self._follow_fork()

    def _start_fork(self) -> None:
        at = self.log.size
        entries = list(self.log.store.read_range(0, at))
        extra = encode_event_entry(
            self.config.clock(), LogEvent(EntryKind.CONNECTED, {"party": sorted(SPLIT_GROUP)[0]})
        )
        entries.append(extra)
        self._fork = _Fork(at, entries, [leaf_hash(e) for e in entries])
        self.touched.append(f"forked the history at size {at} for {sorted(SPLIT_GROUP)}")

    def _follow_fork(self) -> None:
        fork = self._fork
        assert fork is not None
        size = self.log.size
        real = len(fork.entries) - 1
        if size > real:
            for entry in self.log.store.read_range(real, size):
                fork.entries.append(entry)
                fork.leaves.append(leaf_hash(entry))
        if len(fork.entries) == self._fork_sent:
            return
        self._fork_sent = len(fork.entries)
        note = self._fork_note()
        for party in SPLIT_GROUP:
            self.send_now(party, encode_control(CheckpointNote(note)))

    def _fork_note(self) -> bytes:
        fork = self._fork
        assert fork is not None
        hasher = ListHasher(fork.leaves)
        size = len(fork.leaves)
        checkpoint = Checkpoint(self.network.relay.origin, size, hasher(0, size))
        return sign_checkpoint(checkpoint, self.network.relay.origin, self.config.key)

    def _cheat_broadcast(self, action: Broadcast) -> list[RelayAction]:
        if self._fork is None:
            return [action]
        return [Send(party, action.data) for party in self.network.endpoints
                if party not in SPLIT_GROUP]

    def _shift_for_group(self, action: Send, control: object) -> Send:
        """Indexes told to the other history's endpoints point into that history."""
        fork = self._fork
        assert fork is not None
        if isinstance(control, Deliver):
            return Send(action.party, encode_control(Deliver(fork.shifted(control.index),
                                                             control.frame)))
        if isinstance(control, Accepted):
            envelope = open_envelope(control.frame, self.network, max_size=1 << 30)
            body = envelope.body
            assert isinstance(body, AcceptedBody)
            index = fork.shifted(body.index)
            moved = AcceptedBody(id=body.id, sender=body.sender, ts=body.ts, seq=index,
                                 kid=body.kid, ref=body.ref, hash=body.hash, index=index)
            return Send(action.party, encode_control(Accepted(seal(moved, self.config.key))))
        if isinstance(control, Welcome):
            return Send(action.party, encode_control(Welcome(control.id, len(fork.entries))))
        return action

    # ------------------------------------------------------------------ the HTTP side

    async def http_attack(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        refused = (
            (Attack.REFUSE_CONSISTENCY, "/v1/proof/consistency"),
            (Attack.REFUSE_ENTRIES, "/tile/entries/"),
        )
        for attack, path in refused:
            if self.armed and self.attack is attack and request.path.startswith(path):
                self._note_once(f"refused {path}")
                return web.json_response({"error": "busy", "detail": "try later"}, status=503)
        agent = request.headers.get("User-Agent", "")
        party = agent.removeprefix("hotline-endpoint/")
        if self._fork is not None and party in SPLIT_GROUP:
            return self._fork_http(request)
        return await handler(request)

    def _note_once(self, what: str) -> None:
        if what not in self.touched:
            self.touched.append(what)

    def _fork_http(self, request: web.Request) -> web.StreamResponse:
        fork = self._fork
        assert fork is not None
        hasher = ListHasher(fork.leaves)
        if request.path == "/v1/proof/consistency":
            try:
                old, new = int(request.query["old"]), int(request.query["new"])
                proof = consistency_proof(old, new, hasher)
            except (KeyError, ValueError, HotlineError) as exc:
                return web.json_response({"error": "bad_request", "detail": str(exc)}, status=400)
            return web.json_response(
                consistency_json(old, new, hasher(0, old), hasher(0, new), proof)
            )
        if request.path.startswith("/tile/entries/"):
            ref = parse_tile_path(request.path.removeprefix("/"))
            start = ref.index * TILE_WIDTH
            if start + ref.width > len(fork.entries):
                return web.json_response({"error": "not_found"}, status=404)
            data = encode_entry_bundle(fork.entries[start : start + ref.width])
            return web.Response(body=data, content_type="application/octet-stream")
        if request.path == "/checkpoint":
            return web.Response(body=self._fork_note(), content_type="text/plain")
        return web.json_response({"error": "not_found"}, status=404)


def _accepts_routed(frame: bytes, relay: EvilRelay) -> bool:
    """Whether an ``accepted`` answers a routed message (not a receipt)."""
    try:
        envelope = open_envelope(frame, relay.network, max_size=1 << 30)
    except Rejected:
        return False
    body = envelope.body
    return isinstance(body, AcceptedBody) and body.ref in relay.routed_ids


def evil_app(relay: EvilRelay) -> web.Application:
    """The relay's application with the hostile HTTP side in front."""
    @web.middleware
    async def hostile(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await relay.http_attack(request, handler)

    app = create_app(relay)
    app.middlewares.append(hostile)
    return app
