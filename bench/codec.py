"""What the envelope codec costs per call, signatures left out.

    python bench/codec.py [--seconds 0.3] [--json FILE]

Per round trip the relay opens two envelopes (a warning and its receipt),
seals two ``accepted`` receipts and wraps each frame in a control map
(``accepted``, ``deliver``); an endpoint opens what it is delivered and seals
its receipts. This times each of those steps in CPU µs per call, without the
Ed25519 work (measured on its own by ``bench/monitor.py``), so that the
Python share of the codec is visible: ``open`` is :func:`read_envelope` then
:meth:`SignedFrame.verified` with the signature taken as checked, ``encode``
is :func:`encode_body` (what :func:`seal` does before it signs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import msgpack

from hotline.protocol.bodies import AcceptedBody, Body, ReceiptBody, Track, WarningBody
from hotline.protocol.envelope import VERSION, Envelope, read_envelope
from hotline.protocol.ids import make_id
from hotline.protocol.keys import KeyPeriod, SigningKey
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    Accepted,
    Control,
    Deliver,
    decode_control,
    encode_control,
)
from hotline.protocol.vocab import ObjectKind, Precedence, Source, Stage, Status

START_MS = 1_764_000_000_000
KEY = SigningKey.from_seed(bytes(32))
KID = KEY.public.kid


class _Keys:
    """A key directory in which every party signs with the one unbounded key ``KEY``."""

    def __init__(self) -> None:
        self._periods = (KeyPeriod(KEY.public),)

    def periods_of(self, party: str) -> Sequence[KeyPeriod] | None:
        return self._periods


def _us_per_call(work: Callable[[], object], seconds: float) -> float:
    """CPU µs of this thread per call of ``work``, over about ``seconds``, best of three."""
    calls = 1
    while True:
        started = time.thread_time_ns()
        for _ in range(calls):
            work()
        spent = time.thread_time_ns() - started
        if spent > seconds * 1e9 / 3:
            break
        calls *= 2
    best = spent / calls
    for _ in range(2):
        started = time.thread_time_ns()
        for _ in range(calls):
            work()
        best = min(best, (time.thread_time_ns() - started) / calls)
    return best / 1000


def _frame(body: Body) -> bytes:
    """An envelope of ``body`` with a dummy signature: ``open`` below does not verify it."""
    frame: bytes = msgpack.packb([VERSION, encode_body(body), b"\x00" * 64], use_bin_type=True)
    return frame


def bodies() -> dict[str, Body]:
    """A warning as bench/relay.py sends it, its delivered receipt, and the relay's accepted."""
    def head(n: int, sender: str) -> dict[str, object]:
        return {"id": make_id(START_MS + n, bytes([n]) * 10), "sender": sender,
                "ts": START_MS + n, "seq": n, "kid": KID}

    warning = WarningBody(
        **head(1, "BY"),  # type: ignore[arg-type]
        to=("LT",), status=Status.EXERCISE, precedence=Precedence.FLASH,
        incident=make_id(START_MS, b"\x07" * 10), expires=START_MS + 600_000,
        track=Track(lat=54.3512, lon=25.9041, observed_at=START_MS, object=ObjectKind.UAV,
                    confidence=0.8, source=Source.RADAR, sensor_id="BY-RAD-07",
                    pos_err_m=150.0, heading_deg=285.0, speed_mps=33.0),
        text="Bench warning " + "x" * 120, lang="en",
    )
    digest = b"\x02" * 32
    receipt = ReceiptBody(**head(2, "LT"), ref=warning.id, hash=digest,  # type: ignore[arg-type]
                          stage=Stage.DELIVERED)
    accepted = AcceptedBody(**head(3, "relay"), ref=warning.id, hash=digest,  # type: ignore[arg-type]
                            index=12_345)
    return {"warning": warning, "receipt": receipt, "accepted": accepted}


def measure(seconds: float) -> dict[str, float]:
    keys = _Keys()
    figures: dict[str, float] = {}
    for name, body in bodies().items():
        frame = _frame(body)
        figures[f"open_{name}_us"] = _us_per_call(partial(_open, frame, keys), seconds)
        figures[f"encode_{name}_us"] = _us_per_call(partial(encode_body, body), seconds)
    accepted, warning = _frame(bodies()["accepted"]), _frame(bodies()["warning"])
    controls: dict[str, Control] = {"accepted": Accepted(accepted),
                                    "deliver": Deliver(12_345, warning)}
    for name, control in controls.items():
        figures[f"encode_control_{name}_us"] = _us_per_call(
            partial(encode_control, control), seconds)
        figures[f"decode_control_{name}_us"] = _us_per_call(
            partial(decode_control, encode_control(control)), seconds)
    return {key: round(value, 2) for key, value in figures.items()}


def _open(frame: bytes, keys: _Keys) -> Envelope:
    return read_envelope(frame, keys).verified(unsafe_signature_checked=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time spent on each step")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    figures = measure(args.seconds)
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
