"""The rules every log entry keeps, checked from the log alone, sans-IO.

An honest relay admits an envelope only when the admission rules hold
(:mod:`hotline.protocol.admission`); everything those rules look at is in the
log, so an auditor (``hotline audit verify``) or an endpoint's log monitor can
check afterwards that the relay kept them. :class:`LogRules` is fed every
entry in log order from index 0 and answers with the :class:`Finding` objects
for that entry (none for a sound one). Each finding names its rule and whom it
blames:

- :attr:`Blame.CORRUPT`: the bytes are damaged; they hold no entry, or no
  envelope whose signature verifies, so nothing can be said of their author;
- :attr:`Blame.RELAY`: the entry is well formed and its signature holds, but
  an honest relay would have refused it; the relay logged it anyway.

========================== ======= =====================================================
rule                       blame   the entry breaks it when
========================== ======= =====================================================
entry_undecodable          corrupt it is not ``[kind, relay_ts, payload]``, or its
                                   envelope is not ``[1, body, sig]`` with a map body
signer_unknown             corrupt ``from`` and ``kid`` name no key of this network
signature_bad              corrupt the signature does not verify over the body bytes
key_out_of_period          relay   the signing key's period does not hold the body's ``ts``
key_expired                relay   the endpoint's key had expired when the relay logged
                                   the entry (its ``relay_ts``), though ``ts`` is within
frame_too_large            relay   the envelope is larger than ``max_frame_bytes``
body_schema                relay   the body breaks the schema (protocol §3)
type_never_logged          relay   an ``accepted`` or ``refused`` body is in the log
sender_is_relay_only_type  relay   an endpoint signed a ``test``
relay_signs_only_tests     relay   the relay signed a body other than a ``test``
id_reused                  relay   an earlier entry holds the same ``id``
seq_not_rising             relay   ``seq`` is not above the sender's previous ``seq``
link_forbidden             relay   a recipient of a routed message is not an endpoint
                                   linked to the sender (``*``: every linked endpoint,
                                   at least one), or a test's ``to`` is no endpoint
receipt_unknown_ref        relay   a receipt's ``ref`` names no earlier message or test
receipt_not_from_recipient relay   a receipt's sender is not a recipient of ``ref``
                                   (for a test: not its ``to``)
receipt_hash_mismatch      relay   a receipt's ``hash`` is not the SHA-256 of the body
                                   bytes logged for ``ref``
receipt_conflicts          relay   an earlier receipt of the same sender and ``stage``
                                   for the same ``ref`` is in the log
receipt_not_owed           relay   the sender's earlier receipts for ``ref`` leave no
                                   receipt of this ``stage`` owed (the lifecycle table,
                                   :mod:`hotline.protocol.lifecycle`): ``delivered``
                                   after ``acknowledged`` or ``rejected``, ``rejected``
                                   after ``acknowledged`` and the reverse; for a test,
                                   any receipt after its first, or ``acknowledged``
                                   (protocol step 8d)
========================== ======= =====================================================

Rules are judged against the network given (its endpoints, links, keys with
their periods and limits): audit a log with the network.toml that was in force
while it was written. An entry is reported under every rule it breaks, except
that a reused id is reported alone (the entry is then ignored: the earlier one
holds the id). An entry blamed on the relay otherwise still counts as logged
(its id is taken, its ``seq`` is the sender's last, receipts may answer it), so
one bad entry does not make its neighbours findings too; a receipt with a
finding does not count against a later, sound receipt. A corrupt entry counts
as nothing; once one was seen, a receipt whose ref is unknown may answer it, so
that finding blames corruption too.

The stateless part (decoding, the signature) is :meth:`Examiner.examine`, which
worker processes may run in parallel; the ordered part is
:meth:`LogRules.ordered`. :meth:`LogRules.entry` does both.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import msgpack

from hotline.auditlog.leaf import decode_entry
from hotline.errors import EntryError, Rejected, UsageError
from hotline.network import Network
from hotline.protocol.bodies import ALL_RECIPIENTS
from hotline.protocol.envelope import MSG_TAG, VERSION, period_problem
from hotline.protocol.ids import ID_SIZE
from hotline.protocol.keys import KID_SIZE, SIGNATURE_SIZE, KeyPeriod
from hotline.protocol.lifecycle import RecipientState, Step, advance, expects
from hotline.protocol.schema import map_to_body, unpack_map
from hotline.protocol.timetext import format_utc_ms
from hotline.protocol.vocab import BodyType, Stage

__all__ = ["Blame", "EntryFacts", "Examined", "Examiner", "Finding", "LogRules", "Rule"]

_HASH_SIZE: Final = 32
_ROUTED: Final = frozenset(
    {BodyType.WARNING.value, BodyType.UPDATE.value, BodyType.CANCEL.value, BodyType.TEXT.value}
)
_NEVER_LOGGED: Final = frozenset({BodyType.ACCEPTED.value, "refused"})
_STAGES: Final = frozenset(stage.value for stage in Stage)
_KNOWN_TYPES: Final = frozenset(t.value for t in BodyType) | _NEVER_LOGGED


class Blame(enum.Enum):
    RELAY = "relay"  # the relay logged what an honest relay refuses (a finding against it)
    CORRUPT = "corrupt"  # the bytes are damaged: undecodable, bad signature, tree mismatch


class Rule(enum.StrEnum):
    """The stable names of the rules (the module docstring says what each means)."""

    ENTRY_UNDECODABLE = "entry_undecodable"
    SIGNER_UNKNOWN = "signer_unknown"
    SIGNATURE_BAD = "signature_bad"
    KEY_OUT_OF_PERIOD = "key_out_of_period"
    KEY_EXPIRED = "key_expired"
    FRAME_TOO_LARGE = "frame_too_large"
    BODY_SCHEMA = "body_schema"
    TYPE_NEVER_LOGGED = "type_never_logged"
    SENDER_IS_RELAY_ONLY_TYPE = "sender_is_relay_only_type"
    RELAY_SIGNS_ONLY_TESTS = "relay_signs_only_tests"
    ID_REUSED = "id_reused"
    SEQ_NOT_RISING = "seq_not_rising"
    LINK_FORBIDDEN = "link_forbidden"
    RECEIPT_UNKNOWN_REF = "receipt_unknown_ref"
    RECEIPT_NOT_FROM_RECIPIENT = "receipt_not_from_recipient"
    RECEIPT_HASH_MISMATCH = "receipt_hash_mismatch"
    RECEIPT_CONFLICTS = "receipt_conflicts"
    RECEIPT_NOT_OWED = "receipt_not_owed"


@dataclass(frozen=True, slots=True)
class Finding:
    """Entry ``index`` breaks ``rule`` (a :class:`Rule` value); ``blame`` says whose fault."""

    index: int
    rule: str
    blame: Blame
    sentence: str

    def describe(self) -> str:
        """``entry N: rule: sentence``, the form the CLI prints."""
        return f"entry {self.index}: {self.rule}: {self.sentence}"


class EntryFacts(NamedTuple):
    """What the ordered rules need of one signed envelope (plain values: they cross processes).

    ``to`` is the routed message's ``to`` as signed (``"*"`` or endpoint ids) or
    a test's; empty for a receipt. ``ref``, ``hash`` and ``stage`` are a
    receipt's, empty otherwise.
    """

    sender: str
    ident: bytes
    seq: int
    type: str
    body_hash: bytes
    to: tuple[str, ...] | str = ()
    ref: bytes = b""
    hash: bytes = b""
    stage: str = ""


class Examined(NamedTuple):
    """One entry, examined alone: its facts (None for an event or a corrupt entry), findings."""

    facts: EntryFacts | None
    findings: tuple[Finding, ...]
    envelope: bool  # the entry is an envelope entry (sound or not), not an event


def _corrupt(index: int, rule: Rule, sentence: str) -> Examined:
    return Examined(None, (Finding(index, rule, Blame.CORRUPT, sentence),), envelope=True)


def _relay(index: int, rule: Rule, sentence: str) -> Finding:
    return Finding(index, rule, Blame.RELAY, sentence)


class Examiner:
    """The stateless checks of one entry: decoding, key, signature, the body's own rules.

    ``full_schema`` checks every body against the whole schema; without it only
    the fields the rules read are checked (faster, for large audits).
    """

    def __init__(self, network: Network, *, full_schema: bool = True) -> None:
        self._network = network
        self._full_schema = full_schema
        self._max_frame = network.limits.max_frame_bytes
        self._relay = network.relay.id
        self._keys: dict[tuple[str, bytes], KeyPeriod] = {
            (party, period.key.kid): period
            for party in (network.relay.id, *network.endpoints)
            for period in network.periods_of(party) or ()
        }

    def examine(self, index: int, data: bytes) -> Examined:
        """The facts and findings of entry ``index`` holding ``data``."""
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            return _corrupt(index, Rule.ENTRY_UNDECODABLE, str(exc))
        if entry.envelope is None:
            return Examined(None, (), envelope=False)
        frame = entry.envelope
        try:
            outer = msgpack.unpackb(frame, raw=False)
        except Exception as exc:  # noqa: BLE001 - any decoding failure means damaged bytes
            return _corrupt(
                index, Rule.ENTRY_UNDECODABLE,
                f"the envelope is not valid MessagePack ({type(exc).__name__})",
            )
        if (
            not isinstance(outer, list)
            or len(outer) != 3
            or type(outer[0]) is not int
            or outer[0] != VERSION
            or type(outer[1]) is not bytes
            or type(outer[2]) is not bytes
            or len(outer[2]) != SIGNATURE_SIZE
        ):
            return _corrupt(
                index, Rule.ENTRY_UNDECODABLE,
                "the envelope is not [1, body, sig] with a body and a 64-byte signature as bin",
            )
        body_bytes: bytes = outer[1]
        signature: bytes = outer[2]
        try:
            data_map = unpack_map(body_bytes)
        except Rejected as exc:
            return _corrupt(index, Rule.ENTRY_UNDECODABLE, exc.sentence)
        sender, kid = data_map.get("from"), data_map.get("kid")
        period = (
            self._keys.get((sender, kid))
            if type(sender) is str and type(kid) is bytes and len(kid) == KID_SIZE
            else None
        )
        if period is None:
            return _corrupt(
                index, Rule.SIGNER_UNKNOWN,
                f"from {sender!r} with key id {kid.hex() if type(kid) is bytes else kid!r} "
                "names no key of this network",
            )
        assert isinstance(sender, str)
        if not period.key.verify(signature, MSG_TAG + body_bytes):
            return _corrupt(
                index, Rule.SIGNATURE_BAD, f"the signature is not {sender}'s over this body"
            )
        return self._signed(
            index, entry.relay_ts, frame, body_bytes=body_bytes, data=data_map, sender=sender,
            period=period,
        )

    def _signed(
        self,
        index: int,
        relay_ts: int,
        frame: bytes,
        *,
        body_bytes: bytes,
        data: dict[str, Any],
        sender: str,
        period: KeyPeriod,
    ) -> Examined:
        """The rules of an envelope whose signature holds: every failure is the relay's."""
        findings: list[Finding] = []
        ts = data.get("ts")
        if period.bounded and (type(ts) is not int or ts < 0 or not period.covers(ts)):
            findings.append(_relay(
                index, Rule.KEY_OUT_OF_PERIOD,
                period_problem(period, sender, ts) if type(ts) is int and ts >= 0
                else f"ts {ts!r} is not a time, and key {period.key.kid.hex()} of {sender} "
                "has a period",
            ))
        elif (
            sender != self._relay
            and period.not_after is not None
            and relay_ts >= period.not_after
        ):
            findings.append(_relay(
                index, Rule.KEY_EXPIRED,
                f"key {period.key.kid.hex()} of {sender} expired at "
                f"{format_utc_ms(period.not_after)}, before the relay logged this at "
                f"{format_utc_ms(relay_ts)}",
            ))
        if len(frame) > self._max_frame:
            findings.append(_relay(
                index, Rule.FRAME_TOO_LARGE,
                f"the envelope is {len(frame)} bytes, more than {self._max_frame}",
            ))
        kind = data.get("t")
        if kind in _NEVER_LOGGED:
            findings.append(_relay(
                index, Rule.TYPE_NEVER_LOGGED,
                f"a {kind} body by {sender} is never logged; it answers a sender directly",
            ))
            return Examined(None, tuple(findings), envelope=True)
        if kind == BodyType.TEST.value and sender != self._relay:
            findings.append(_relay(
                index, Rule.SENDER_IS_RELAY_ONLY_TYPE,
                f"{sender} signed a test; only the relay may",
            ))
            return Examined(None, tuple(findings), envelope=True)
        if sender == self._relay and kind != BodyType.TEST.value and kind in _KNOWN_TYPES:
            findings.append(_relay(
                index, Rule.RELAY_SIGNS_ONLY_TESTS,
                f"the relay signed a {kind} body; it signs only tests into the log",
            ))
            return Examined(None, tuple(findings), envelope=True)
        facts, problem = self._facts(data, sender, body_bytes)
        if problem is not None:
            findings.append(_relay(index, Rule.BODY_SCHEMA, problem))
        return Examined(facts, tuple(findings), envelope=True)

    def _facts(
        self, data: dict[str, Any], sender: str, body_bytes: bytes
    ) -> tuple[EntryFacts | None, str | None]:
        """The facts the ordered rules need, or the schema problem that hides them."""
        if self._full_schema:
            try:
                map_to_body(data)
            except Rejected as exc:
                return None, str(exc)
        kind, ident, seq = data.get("t"), data.get("id"), data.get("seq")
        if kind not in _KNOWN_TYPES:
            return None, f"t: {kind!r} is not a body type"
        if type(ident) is not bytes or len(ident) != ID_SIZE:
            return None, "id: must be 16 bytes of bin"
        if type(seq) is not int or seq < 0:
            return None, "seq: must be a non-negative integer"
        digest = hashlib.sha256(body_bytes).digest()
        assert isinstance(kind, str)
        if kind == BodyType.RECEIPT.value:
            ref, hash_v, stage = data.get("ref"), data.get("hash"), data.get("stage")
            if type(ref) is not bytes or len(ref) != ID_SIZE:
                return None, "ref: must be 16 bytes of bin"
            if type(hash_v) is not bytes or len(hash_v) != _HASH_SIZE:
                return None, "hash: must be 32 bytes of bin"
            if stage not in _STAGES:
                return None, f"stage: {stage!r} is not a stage"
            assert isinstance(stage, str)
            return EntryFacts(sender, ident, seq, kind, digest, (), ref, hash_v, stage), None
        to = data.get("to")
        if to == ALL_RECIPIENTS and kind in _ROUTED:
            return EntryFacts(sender, ident, seq, kind, digest, ALL_RECIPIENTS), None
        if (
            not isinstance(to, list)
            or not to
            or not all(type(party) is str for party in to)
            or len(set(to)) != len(to)
        ):
            return None, "to: must be '*' or a non-empty list of distinct endpoint ids"
        return EntryFacts(sender, ident, seq, kind, digest, tuple(to)), None


@dataclass(frozen=True, slots=True)
class _Logged:
    """A logged message or test, as receipts need it."""

    body_hash: bytes
    recipients: frozenset[str]
    sender: str
    test: bool


class LogRules:
    """Feed every entry in log order from index 0; get the findings for that entry."""

    def __init__(self, network: Network, *, full_schema: bool = True) -> None:
        self._network = network
        self.examiner: Final = Examiner(network, full_schema=full_schema)
        self._next = 0
        self._ids: set[bytes] = set()
        self._last_seq: dict[str, int] = {}
        self._messages: dict[bytes, _Logged] = {}  # routed messages and tests, by id
        self._receipts: set[tuple[bytes, str, str]] = set()  # (ref, sender, stage) logged
        # (ref, recipient) → its state after its sound receipts so far (else ACCEPTED)
        self._states: dict[tuple[bytes, str], RecipientState] = {}
        self._corrupt = 0  # corrupt entries so far

    @property
    def next_index(self) -> int:
        """The index of the entry expected next."""
        return self._next

    def entry(self, index: int, entry: bytes) -> list[Finding]:
        """Check entry ``index`` (the one after the last fed) alone and against those before."""
        examined = self.examiner.examine(index, entry)
        corrupt = any(finding.blame is Blame.CORRUPT for finding in examined.findings)
        return [*examined.findings, *self.ordered(index, examined.facts, corrupt=corrupt)]

    def ordered(
        self, index: int, facts: EntryFacts | None, *, corrupt: bool = False
    ) -> list[Finding]:
        """The rules that need earlier entries, for facts already examined (in log order).

        ``corrupt`` says the entry's bytes are damaged (``facts`` is then None):
        a later receipt whose ref is unknown may refer to it, so that finding
        then blames corruption, not the relay.
        """
        if index != self._next:
            raise UsageError(
                f"entries are checked in log order: expected {self._next}, not {index}"
            )
        self._next += 1
        if corrupt:
            self._corrupt += 1
        if facts is None:
            return []
        if facts.ident in self._ids:  # the earlier entry is the one receipts refer to
            return [_relay(
                index, Rule.ID_REUSED, f"id {facts.ident.hex()} was used by an earlier entry"
            )]
        self._ids.add(facts.ident)
        findings: list[Finding] = []
        last = self._last_seq.get(facts.sender)
        if last is not None and facts.seq <= last:
            findings.append(_relay(
                index, Rule.SEQ_NOT_RISING,
                f"seq {facts.seq} from {facts.sender} does not rise above {last}",
            ))
        else:
            self._last_seq[facts.sender] = facts.seq
        if facts.type == BodyType.RECEIPT.value:
            findings.extend(self._receipt(index, facts))
        else:
            findings.extend(self._message(index, facts))
        return findings

    def _message(self, index: int, facts: EntryFacts) -> list[Finding]:
        network = self._network
        findings: list[Finding] = []
        if facts.type == BodyType.TEST.value:
            recipients = facts.to
            for party in recipients:
                if party not in network.endpoints:
                    findings.append(_relay(
                        index, Rule.LINK_FORBIDDEN,
                        f"the test is for {party}, not an endpoint of this network",
                    ))
        elif facts.to == ALL_RECIPIENTS:
            recipients = network.peers(facts.sender)
            if not recipients:
                findings.append(_relay(
                    index, Rule.LINK_FORBIDDEN, f"{facts.sender} has no linked endpoint"
                ))
        else:
            recipients = facts.to
            for party in recipients:
                if party not in network.endpoints:
                    sentence = f"{party} is not an endpoint of this network"
                elif not network.linked(facts.sender, party):
                    sentence = f"there is no link {facts.sender}-{party}"
                else:
                    continue
                findings.append(_relay(index, Rule.LINK_FORBIDDEN, sentence))
        self._messages[facts.ident] = _Logged(
            facts.body_hash, frozenset(recipients), facts.sender,
            test=facts.type == BodyType.TEST.value,
        )
        return findings

    def _receipt(self, index: int, facts: EntryFacts) -> list[Finding]:
        logged = self._messages.get(facts.ref)
        if logged is None:
            sentence = (
                f"the receipt refers to {facts.ref.hex()}, which no earlier message or test "
                "in the log holds"
            )
            if self._corrupt:
                return [Finding(
                    index, Rule.RECEIPT_UNKNOWN_REF, Blame.CORRUPT,
                    f"{sentence} (it may be one of the {self._corrupt} corrupt entries before it)",
                )]
            return [_relay(index, Rule.RECEIPT_UNKNOWN_REF, sentence)]
        findings: list[Finding] = []
        if facts.sender not in logged.recipients:
            findings.append(_relay(
                index, Rule.RECEIPT_NOT_FROM_RECIPIENT,
                f"{facts.sender} is not a recipient of {facts.ref.hex()} "
                f"(from {logged.sender} to {', '.join(sorted(logged.recipients)) or 'nobody'})",
            ))
        if facts.hash != logged.body_hash:
            findings.append(_relay(
                index, Rule.RECEIPT_HASH_MISMATCH,
                f"the receipt's hash {facts.hash.hex()} is not the SHA-256 "
                f"{logged.body_hash.hex()} of the body logged for {facts.ref.hex()}",
            ))
        key = (facts.ref, facts.sender, facts.stage)
        if key in self._receipts:
            findings.append(_relay(
                index, Rule.RECEIPT_CONFLICTS,
                f"{facts.sender} already has a {facts.stage} receipt for {facts.ref.hex()} "
                "in the log",
            ))
            return findings
        not_owed = self._not_owed(logged, facts)
        if not_owed:
            findings.append(_relay(index, Rule.RECEIPT_NOT_OWED, not_owed))
        if not findings:
            self._receipts.add(key)
            who = (facts.ref, facts.sender)
            state = self._states.get(who, RecipientState.ACCEPTED)
            self._states[who] = advance(state, Step.of(Stage(facts.stage)))
        return findings

    def _not_owed(self, logged: _Logged, facts: EntryFacts) -> str:
        """Why no receipt of this stage was owed by its sender for ``ref``, or ""."""
        stage = Stage(facts.stage)
        state = self._states.get((facts.ref, facts.sender), RecipientState.ACCEPTED)
        if logged.test:  # answered once, delivered or rejected; the answer closes it
            if state is not RecipientState.ACCEPTED:
                return f"the test {facts.ref.hex()} was answered already by {facts.sender}"
            if stage is Stage.ACKNOWLEDGED:
                return "a link test is answered delivered or rejected, not acknowledged"
            return ""
        if stage in expects(state):
            return ""
        return (
            f"{facts.sender} is {state.value} for {facts.ref.hex()} by its earlier receipts: "
            f"a {stage.value} receipt is not owed"
        )
