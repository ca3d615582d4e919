"""Demo scenarios: timed steps of drone incidents and simulated duty officers, pure.

A scenario is JSON: ``length_s`` (its natural length), ``officers`` (per
endpoint: ``ack_after_s``, ``action``, ``note``) and ``steps``, each with
``at`` (seconds from the start) and ``do``:

- ``warn`` — ``key`` (a name later steps refer to), ``from``, ``to``,
  ``precedence``, ``status``, ``track`` (SI units, no ``observed_at``: it is
  stamped when sent), optional ``predicted`` with ``in_s`` (seconds from the
  moment of sending to the predicted crossing; never compressed), ``advice``,
  ``text`` and ``lang``;
- ``update`` — ``ref`` (a ``key``), ``from``, ``track``, optional ``predicted``;
- ``cancel`` — ``ref``, ``from``, ``reason``, optional ``text`` and ``lang``;
- ``text`` — ``from``, ``to``, ``text``, ``lang``;
- ``alert`` — a sensor's report, posted to the ``/api/alerts`` of ``from``
  with that endpoint's demo feed token: ``precedence``, ``track`` (as for
  ``warn``), optional ``to`` and ``status`` (default: the feed's, ``*`` and
  actual), ``track_id`` (the sensor's track number), ``predicted`` (with
  ``in_s``), ``advice``, ``text``, ``lang``, and ``key``. The endpoint makes
  the first report of a track (``track.sensor_id`` + ``track_id``) a warning
  and later ones, while its incident is open, updates of it;
- ``offline`` / ``online`` — ``endpoint``: stop or start that endpoint.

:func:`scaled` compresses a scenario to a duration: every step time and every
officer's delay shrinks by the same factor, so each stage still happens in
order. Predicted crossings stay in real seconds so lead times stay meaningful.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

from hotline.errors import ConfigError

__all__ = ["Officer", "Scenario", "Step", "builtin_scenario", "load_scenario", "scaled"]

_ACTIONS: Final = frozenset({"warn", "alert", "update", "cancel", "text", "offline", "online"})


@dataclass(frozen=True, slots=True)
class Officer:
    ack_after_s: float
    action: str
    note: str


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    do: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    length_s: float
    officers: dict[str, Officer]
    steps: tuple[Step, ...]


def _parse(data: object, source: str) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario is a JSON object")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"{source}: steps must be a non-empty list")
    parsed: list[Step] = []
    keys: set[str] = set()
    for number, raw in enumerate(steps, 1):
        where = f"{source} step {number}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be an object")
        at, do = raw.get("at"), raw.get("do")
        if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
            raise ConfigError(f"{where}: at must be a number of seconds")
        if do not in _ACTIONS:
            raise ConfigError(f"{where}: do must be one of {', '.join(sorted(_ACTIONS))}")
        fields = {k: v for k, v in raw.items() if k not in ("at", "do")}
        if do == "warn" or (do == "alert" and "key" in fields):
            key = fields.get("key")
            if not isinstance(key, str) or key in keys:
                raise ConfigError(f"{where}: a warning needs a unique key")
            keys.add(key)
        if do == "alert" and not isinstance(fields.get("track"), dict):
            raise ConfigError(f"{where}: an alert needs a track")
        if do in ("update", "cancel") and fields.get("ref") not in keys:
            raise ConfigError(f"{where}: ref must name an earlier warning's key")
        parsed.append(Step(float(at), str(do), fields))
    officers: dict[str, Officer] = {}
    for party, raw in (data.get("officers") or {}).items():
        try:
            officers[party] = Officer(
                float(raw["ack_after_s"]), str(raw["action"]), str(raw.get("note", ""))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source} officers.{party}: needs ack_after_s and action") from exc
    length = data.get("length_s", max(step.at for step in parsed))
    return Scenario(
        str(data.get("name", "scenario")), float(length), officers,
        tuple(sorted(parsed, key=lambda s: s.at)),
    )


def load_scenario(path: Path) -> Scenario:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc}") from exc
    return _parse(data, str(path))


def builtin_scenario() -> Scenario:
    text = resources.files("hotline.demo").joinpath("scenario.json").read_text(encoding="utf-8")
    return _parse(json.loads(text), "built-in scenario")


def scaled(scenario: Scenario, duration_s: float) -> Scenario:
    """The scenario compressed (or stretched) so its steps fit in ``duration_s``."""
    factor = duration_s / scenario.length_s
    return replace(
        scenario,
        length_s=duration_s,
        officers={
            p: replace(o, ack_after_s=o.ack_after_s * factor) for p, o in scenario.officers.items()
        },
        steps=tuple(replace(s, at=s.at * factor) for s in scenario.steps),
    )
