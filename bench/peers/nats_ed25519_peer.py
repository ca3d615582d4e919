"""The NATS workload with hotline's Ed25519 work in its clients (system ``nats-ed25519``).

The same streams, consumers and acks as :mod:`peers.nats_peer`, on a
nats-server of its own; what the clients carry is signed and checked with
hotline's key classes (``cryptography``/OpenSSL signs, PyNaCl/libsodium
verifies), over ``MSG_TAG`` + the payload as hotline signs ``MSG_TAG`` + a body:

- A signs each warning (in :meth:`prepare`, before the clock starts, as
  hotline's BY does);
- B verifies the warning with A's public key, then signs its acknowledgement;
- A verifies the acknowledgement with B's public key before it counts.

A message is the payload followed by its 64-byte signature, the whole of the
same size as hotline's frames. A signature that does not verify is the run's
failure, and the message is not answered.
"""

from __future__ import annotations

from typing import Final

from hotline.protocol.envelope import MSG_TAG
from hotline.protocol.keys import SIGNATURE_SIZE, SigningKey
from peers.nats_peer import NatsPeer
from peers.workload import padded, token_of

__all__ = ["NatsEd25519Peer"]

SIG: Final = SIGNATURE_SIZE


class NatsEd25519Peer(NatsPeer):
    def __init__(self, port: int, server_pid: int, *, warning_size: int, ack_size: int) -> None:
        super().__init__(port, server_pid, warning_size=warning_size, ack_size=ack_size)
        self.name = "nats-ed25519"
        self._key_a = SigningKey.generate()
        self._key_b = SigningKey.generate()

    def prepare(self, token: int) -> bytes:
        payload = padded(token, self._warning_size - SIG)
        return payload + self._key_a.sign(MSG_TAG + payload)

    def _answer(self, warning: bytes) -> bytes | None:
        payload, signature = warning[:-SIG], warning[-SIG:]
        if not self._key_a.public.verify(signature, MSG_TAG + payload):
            self._error = "B received a warning whose signature is not A's"
            return None
        answer = padded(token_of(payload), self._ack_size - SIG)
        return answer + self._key_b.sign(MSG_TAG + answer)

    def _acknowledged(self, acknowledgement: bytes) -> int | None:
        payload, signature = acknowledgement[:-SIG], acknowledgement[-SIG:]
        if not self._key_b.public.verify(signature, MSG_TAG + payload):
            self._error = "A received an acknowledgement whose signature is not B's"
            return None
        return token_of(payload)
