"""Hypothesis strategies for valid bodies of every type."""

from __future__ import annotations

from hypothesis import strategies as st

from hotline.protocol.bodies import (
    AcceptedBody,
    Body,
    CancelBody,
    CapArea,
    CapInfo,
    CapOrigin,
    LinkTestBody,
    Predicted,
    ReceiptBody,
    Recipients,
    TextBody,
    Track,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.ids import make_id
from hotline.protocol.vocab import (
    AckAction,
    Advice,
    AltRef,
    CancelReason,
    ObjectKind,
    Precedence,
    Source,
    Stage,
    Status,
)

KID = bytes(range(8))
MAX_MS = (1 << 48) - 1

ids = st.builds(make_id, st.integers(0, MAX_MS), st.binary(min_size=10, max_size=10))
times = st.integers(0, 4_102_444_800_000)
party = st.from_regex(r"[A-Z][A-Z0-9]{1,3}", fullmatch=True)
recipients: st.SearchStrategy[Recipients] = st.one_of(
    st.just("*"), st.lists(party, min_size=1, max_size=5, unique=True).map(tuple)
)
# no surrogates, controls (C0, DEL, C1) nor format characters (bidi, zero-width): the schema
# refuses those in free text
text = st.text(
    st.characters(exclude_categories=["Cs", "Cc", "Cf"], min_codepoint=0x20), max_size=200
)
operators = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", fullmatch=True)
langs = st.sampled_from(["en", "ru", "be", "lt", "lv", "et", "pl", "en-GB"])


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def tracks(draw: st.DrawFn) -> Track:
    with_alt = draw(st.booleans())
    return Track(
        lat=draw(floats(-90, 90)),
        lon=draw(floats(-180, 180)),
        observed_at=draw(times),
        object=draw(st.sampled_from(ObjectKind)),
        confidence=draw(floats(0, 1)),
        source=draw(st.sampled_from(Source)),
        pos_err_m=draw(st.none() | floats(0, 1e5)),
        alt_m=draw(floats(-1000, 20000)) if with_alt else None,
        alt_ref=draw(st.sampled_from(AltRef)) if with_alt else None,
        heading_deg=draw(st.none() | floats(0, 359.99)),
        speed_mps=draw(st.none() | floats(0, 1000)),
        vrate_mps=draw(st.none() | floats(-100, 100)),
        count=draw(st.none() | st.integers(1, 1000)),
        sensor_id=draw(st.none() | st.text(min_size=1, max_size=20).filter(str.isprintable)),
    )


@st.composite
def predictions(draw: st.DrawFn) -> Predicted:
    a, b = draw(st.lists(party, min_size=2, max_size=2, unique=True))
    return Predicted(
        border=f"{a}-{b}",
        crossing_at=draw(times),
        crossing_lat=draw(st.none() | floats(-90, 90)),
        crossing_lon=draw(st.none() | floats(-180, 180)),
        probability=draw(st.none() | floats(0, 1)),
    )


@st.composite
def headers(draw: st.DrawFn) -> dict[str, object]:
    return {
        "id": draw(ids),
        "sender": draw(party),
        "ts": draw(st.integers(0, 4_000_000_000_000)),
        "seq": draw(st.integers(0, (1 << 63) - 1)),
        "kid": KID,
    }


cap_names = st.from_regex(r"[A-Za-z0-9@.:_-]{1,40}", fullmatch=True)
cap_areas = st.builds(
    CapArea,
    desc=text,
    polygon=st.none() | st.lists(text.filter(bool), min_size=1, max_size=3).map(tuple),
    circle=st.none() | st.lists(st.just("54.1,25.2 1.5"), min_size=1, max_size=2).map(tuple),
    altitude=st.none() | floats(-1000, 60000),
)
cap_infos = st.builds(
    CapInfo,
    lang=st.none() | langs,
    event=st.none() | text,
    headline=st.none() | text,
    description=st.none() | text,
    area=st.none() | st.lists(cap_areas, min_size=1, max_size=3).map(tuple),
)
caps = st.builds(
    CapOrigin,
    sender=cap_names,
    identifier=cap_names,
    sent=times,
    info=st.none() | st.lists(cap_infos, min_size=1, max_size=4).map(tuple),
)


@st.composite
def warnings(draw: st.DrawFn, update: bool = False) -> WarningBody:
    head = draw(headers())
    with_text = draw(st.booleans())
    fields: dict[str, object] = {
        **head,
        "to": draw(recipients),
        "status": draw(st.sampled_from(Status)),
        "precedence": draw(st.sampled_from(Precedence)),
        "incident": draw(ids),
        "expires": int(head["ts"]) + draw(st.integers(1, 10**8)),  # type: ignore[call-overload]
        "track": draw(tracks()),
        "predicted": draw(st.none() | predictions()),
        "advice": draw(st.none() | st.sampled_from(Advice)),
        "text": draw(text) if with_text else None,
        "lang": draw(langs) if with_text else None,
    }
    if update:
        return UpdateBody(**fields, ref=draw(ids))  # type: ignore[arg-type]
    return WarningBody(**fields)  # type: ignore[arg-type]


@st.composite
def cancels(draw: st.DrawFn) -> CancelBody:
    with_text = draw(st.booleans())
    return CancelBody(
        **draw(headers()),  # type: ignore[arg-type]
        to=draw(recipients),
        status=draw(st.sampled_from(Status)),
        precedence=draw(st.sampled_from(Precedence)),
        incident=draw(ids),
        ref=draw(ids),
        reason=draw(st.sampled_from(CancelReason)),
        text=draw(text) if with_text else None,
        lang=draw(langs) if with_text else None,
    )


@st.composite
def texts(draw: st.DrawFn) -> TextBody:
    return TextBody(
        **draw(headers()),  # type: ignore[arg-type]
        to=draw(recipients),
        status=draw(st.sampled_from(Status)),
        precedence=draw(st.sampled_from(Precedence)),
        text=draw(text.filter(bool)),
        lang=draw(langs),
        incident=draw(st.none() | ids),
        operator=draw(st.none() | operators),
    )


@st.composite
def receipts(draw: st.DrawFn) -> ReceiptBody:
    stage = draw(st.sampled_from(Stage))
    return ReceiptBody(
        **draw(headers()),  # type: ignore[arg-type]
        ref=draw(ids),
        hash=draw(st.binary(min_size=32, max_size=32)),
        stage=stage,
        action=(
            draw(st.none() | st.sampled_from(AckAction)) if stage is Stage.ACKNOWLEDGED else None
        ),
        note=draw(st.none() | text),
        reason=draw(text) if stage is Stage.REJECTED else None,
        operator=draw(st.none() | operators) if stage is Stage.ACKNOWLEDGED else None,
    )


@st.composite
def link_tests(draw: st.DrawFn) -> LinkTestBody:
    return LinkTestBody(**draw(headers()), to=(draw(party),))  # type: ignore[arg-type]


@st.composite
def accepteds(draw: st.DrawFn) -> AcceptedBody:
    return AcceptedBody(
        **draw(headers()),  # type: ignore[arg-type]
        ref=draw(ids),
        hash=draw(st.binary(min_size=32, max_size=32)),
        index=draw(st.integers(0, 1 << 40)),
    )


bodies: st.SearchStrategy[Body] = st.one_of(
    warnings(), warnings(update=True), cancels(), texts(), receipts(), link_tests(), accepteds()
)


def sample_warning(sender: str = "BY", to: tuple[str, ...] | str = ("LT",)) -> WarningBody:
    """A fixed, valid flash warning (for tests that need one concrete body)."""
    return WarningBody(
        id=make_id(1_764_000_000_000, bytes(10)),
        sender=sender,
        ts=1_764_000_000_000,
        seq=1,
        kid=KID,
        to=to,  # type: ignore[arg-type]
        status=Status.EXERCISE,
        precedence=Precedence.FLASH,
        incident=make_id(1_764_000_000_000, b"\x01" * 10),
        expires=1_764_000_600_000,
        track=Track(
            lat=54.35,
            lon=25.9,
            observed_at=1_763_999_999_000,
            object=ObjectKind.UAV,
            confidence=0.8,
            source=Source.RADAR,
            alt_m=300.0,
            alt_ref=AltRef.MSL,
        ),
        predicted=Predicted(border="BY-LT", crossing_at=1_764_000_240_000),
    )
