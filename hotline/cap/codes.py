"""The CAP 1.2 vocabulary and how it maps onto hotline's (docs/cap.md).

Both directions live here, side by side, so that a reader can check that an
export reads back as itself: every hotline value is written as a CAP value that
the import maps back to the same hotline value.
"""

from __future__ import annotations

from typing import Final

from hotline.protocol.vocab import Advice, ObjectKind, Precedence, Status

__all__ = [
    "ACK_TAG",
    "ADVICE_TO_RESPONSE",
    "CANCEL_EVENT",
    "CAP_NS",
    "CERTAINTY_CONFIDENCE",
    "DEFAULT_EXPIRY_MS",
    "DEFAULT_LANG",
    "EVENT_BY_OBJECT",
    "INCIDENT_TAG",
    "MAX_CAP_BYTES",
    "PARAMETERS",
    "PRECEDENCE_TO_URGENCY_SEVERITY",
    "RESPONSE_TO_ADVICE",
    "RESPONSE_TYPES",
    "RESTRICTION",
    "SENDER_PREFIX",
    "SEVERITIES",
    "STATUS_FROM_CAP",
    "STATUS_TO_CAP",
    "URGENCIES",
    "certainty_of",
    "precedence_of",
]

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES: Final = 256 * 1024
RESTRICTION: Final = "hotline deconfliction network"
SENDER_PREFIX: Final = "hotline:"
DEFAULT_LANG: Final = "en"
DEFAULT_EXPIRY_MS: Final = 3_600_000
"""A CAP Alert or Update without ``info/expires`` expires one hour after ``now``."""

INCIDENT_TAG: Final = b"hotline/cap/incident\x00"
"""Domain tag of the hash that derives an incident id from a CAP alert's identity."""
ACK_TAG: Final = b"hotline/cap/ack\x00"
"""Domain tag of the hash that derives the identifier of an exported Ack."""

STATUS_FROM_CAP: Final[dict[str, Status]] = {
    "Actual": Status.ACTUAL,
    "Exercise": Status.EXERCISE,
    "System": Status.TEST,
    "Test": Status.TEST,
    "Draft": Status.TEST,
}
STATUS_TO_CAP: Final[dict[Status, str]] = {
    Status.ACTUAL: "Actual",
    Status.EXERCISE: "Exercise",
    Status.TEST: "Test",
}

URGENCIES: Final = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES: Final = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")

PRECEDENCE_TO_URGENCY_SEVERITY: Final[dict[Precedence, tuple[str, str]]] = {
    Precedence.FLASH: ("Immediate", "Extreme"),
    Precedence.IMMEDIATE: ("Immediate", "Severe"),
    Precedence.PRIORITY: ("Expected", "Moderate"),
    Precedence.ROUTINE: ("Future", "Minor"),
}


def precedence_of(urgency: str, severity: str) -> Precedence:
    """Immediate+Extreme → flash, Immediate → immediate, Expected → priority, else routine."""
    if urgency == "Immediate":
        return Precedence.FLASH if severity == "Extreme" else Precedence.IMMEDIATE
    if urgency == "Expected":
        return Precedence.PRIORITY
    return Precedence.ROUTINE


CERTAINTY_CONFIDENCE: Final[dict[str, float]] = {
    "Observed": 0.9,
    "Likely": 0.7,
    "Possible": 0.4,
    "Unlikely": 0.1,
    "Unknown": 0.5,
}


def certainty_of(confidence: float) -> str:
    """CAP certainty for a confidence: ≥ 0.9 Observed, > 0.5 Likely, > 0.1 Possible."""
    if confidence >= 0.9:
        return "Observed"
    if confidence > 0.5:
        return "Likely"
    if confidence > 0.1:
        return "Possible"
    return "Unlikely"


RESPONSE_TO_ADVICE: Final[dict[str, Advice]] = {
    "Monitor": Advice.MONITOR,
    "Prepare": Advice.PREPARE,
    "Avoid": Advice.AVOID,
    "Evacuate": Advice.AVOID,
    "Shelter": Advice.AVOID,
    "AllClear": Advice.ALL_CLEAR,
}
RESPONSE_TYPES: Final = (
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
)
ADVICE_TO_RESPONSE: Final[dict[Advice, str]] = {
    Advice.MONITOR: "Monitor",
    Advice.PREPARE: "Prepare",
    Advice.AVOID: "Avoid",
    Advice.ALL_CLEAR: "AllClear",
}

EVENT_BY_OBJECT: Final[dict[ObjectKind, str]] = {
    ObjectKind.UAV: "Drone warning",
    ObjectKind.FIXED_WING: "Fixed-wing aircraft warning",
    ObjectKind.ROTARY: "Rotary-wing aircraft warning",
    ObjectKind.BALLOON: "Balloon warning",
    ObjectKind.MISSILE: "Missile warning",
    ObjectKind.MANNED: "Manned aircraft warning",
    ObjectKind.BIRD: "Bird track warning",
    ObjectKind.UNKNOWN: "Unidentified air object warning",
}
CANCEL_EVENT: Final = "Drone warning"

PARAMETERS: Final = frozenset(
    {
        "hotline:to",
        "hotline:incident",
        "hotline:object",
        "hotline:source",
        "hotline:confidence",
        "hotline:heading_deg",
        "hotline:speed_mps",
        "hotline:vrate_mps",
        "hotline:count",
        "hotline:sensor_id",
        "hotline:alt_m",
        "hotline:alt_ref",
        "hotline:border",
        "hotline:crossing_at",
        "hotline:crossing_lat",
        "hotline:crossing_lon",
        "hotline:probability",
        "hotline:reason",
    }
)
"""Every ``info/parameter`` name hotline reads; any other ``hotline:`` name is refused."""
