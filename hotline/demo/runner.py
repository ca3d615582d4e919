"""The demo's edge: real processes on loopback, driven through their HTTP APIs.

The relay and each endpoint run as their own ``hotline`` processes, exactly as
they would be deployed; the demo plays the sensors and the duty officers by
calling the endpoints' local APIs, takes an endpoint offline and back as the
scenario says, and checks the relay's public HTTP surface while it runs.

Each endpoint has one sensor feed: its token in ``DATA/feeds/<ID>.token``
(mode 0600), its hashed entry in ``DATA/feeds/<ID>.toml`` (the endpoint's
``--feeds``); ``alert`` steps post to ``/api/alerts`` with it, as a sensor would.
Each endpoint has one operator, ``duty-<id>`` (an officer), whose password is in
``DATA/operators/<ID>.password`` (mode 0600): a person logs in to the console with
it, and the simulated officers log in with it through ``POST /api/login`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import structlog

from hotline.bootstrap import NETWORK_FILE, create_network
from hotline.demo.parent import parent_interrupted
from hotline.demo.scenario import Scenario, Step
from hotline.endpoint.feedconfig import append_feed, load_feeds, new_token
from hotline.endpoint.login_client import log_in
from hotline.endpoint.operators import OperatorStore, Role
from hotline.errors import ConfigError, UsageError
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.ids import format_id, make_id

__all__ = ["DemoResult", "run_demo", "run_until_stopped"]

log = structlog.get_logger()

_READY_TIMEOUT_S: Final = 30.0
_DEMO_FEED: Final = "demo-sensors"
_RELAY_CHECKS: Final = ("/healthz", "/v1/links", "/metrics", "/checkpoint")
OFFICERS: Final = ("off", "scenario", "all")
"""Which messages the simulated officers acknowledge: none, the scenario's, or every one."""
_PARENT_POLL_S: Final = 0.5


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class DemoResult:
    """What this run did: messages the scenario sent, acknowledgements the simulated
    officers gave (one per message and recipient), the relay's pages, and the log entries
    this run wrote before the shutdown began (``log_start`` to ``log_end``)."""

    checks: dict[str, int] = field(default_factory=dict)  # relay path → HTTP status
    sent: int = 0
    acknowledged: int = 0
    failures: list[str] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)
    log_start: int = 0
    log_end: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and all(s == 200 for s in self.checks.values()) and bool(
            self.checks
        )


class _Process:
    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handle = os.fdopen(fd, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline", *self.args,
            stdout=handle, stderr=handle, stdin=asyncio.subprocess.DEVNULL,
        )
        handle.close()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Demo:
    def __init__(
        self, data: Path, base_port: int, scenario: Scenario, *, host: str = "127.0.0.1",
        officers: str = "scenario",
    ) -> None:
        if officers not in OFFICERS:
            raise UsageError(f"--officers must be one of {', '.join(OFFICERS)}, not {officers!r}")
        self.officers_mode = officers
        self.data = data
        self.base_port = base_port
        self.scenario = scenario
        self.host = host
        self.network = self._network()
        self.relay_http = f"http://{host}:{base_port}"
        self.ports = {e: base_port + i for i, e in enumerate(self.network.endpoints, 1)}
        self.feed_tokens = {e: self._feed_token(e) for e in self.network.endpoints}
        self.passwords = {e: self._operator_password(e) for e in self.network.endpoints}
        self.logins: dict[str, dict[str, str]] = {}  # each officer's session headers
        self.relay = _Process(
            "relay",
            ["relay", "--network", str(self.data), "--data", str(self.data / "relay"),
             "--host", host, "--port", str(base_port)],
            self.data / "logs" / "relay.log",
        )
        self.endpoints = {
            e: _Process(
                e,
                ["endpoint", "--network", str(self.data), "--id", e,
                 "--data", str(self.data / "endpoints" / e), "--host", host,
                 "--port", str(port), "--relay-url", f"ws://{host}:{base_port}/v1/ws",
                 "--feeds", str(self.feeds_file(e))],
                self.data / "logs" / f"{e}.log",
            )
            for e, port in self.ports.items()
        }
        self.result = DemoResult()
        self.run_forever = False
        self.played = False
        self.sent: dict[str, dict[str, Any]] = {}  # scenario key → what was sent
        self.offline: set[str] = set()
        self.acked: set[tuple[str, str]] = set()
        self.scenario_ids: set[str] = set()  # what the scenario sent: its officers' to answer
        self.stop_requested = asyncio.Event()

    def _network(self) -> Network:
        path = self.data / NETWORK_FILE
        if not path.exists():
            return create_network(
                self.data, relay_url=f"ws://{self.host}:{self.base_port}/v1/ws"
            )
        return load_network(path)

    def endpoint_url(self, party: str) -> str:
        return f"http://{self.host}:{self.ports[party]}"

    def feeds_file(self, party: str) -> Path:
        return self.data / "feeds" / f"{party}.toml"

    def _feed_token(self, party: str) -> str:
        """``party``'s demo sensor token, kept from an earlier run when it still works."""
        token_file = self.data / "feeds" / f"{party}.token"
        feeds_file = self.feeds_file(party)
        if token_file.exists() and feeds_file.exists():
            token = token_file.read_text(encoding="utf-8").strip()
            if load_feeds(feeds_file).authenticate(token) is not None:
                return token
        token = new_token()
        feeds_file.unlink(missing_ok=True)
        append_feed(feeds_file, _DEMO_FEED, token)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(token + "\n")
        return token

    @staticmethod
    def operator_name(party: str) -> str:
        return f"duty-{party.lower()}"

    def password_file(self, party: str) -> Path:
        return self.data / "operators" / f"{party}.password"

    def _operator_password(self, party: str) -> str:
        """``party``'s officer password, kept from an earlier run when it still works."""
        store = OperatorStore(self.data / "endpoints" / party)
        name, path = self.operator_name(party), self.password_file(party)
        if path.exists():
            password = path.read_text(encoding="utf-8").strip()
            if store.verify(name, password) is not None:
                return password
        password = secrets.token_urlsafe(12)
        store.add(name, password, Role.OFFICER)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(password + "\n")
        return password

    # ------------------------------------------------------------------ processes

    async def _ready(self, session: aiohttp.ClientSession, url: str, process: _Process) -> None:
        """Wait until ``process`` answers at ``url`` (and not some other program)."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            if process.proc is not None and process.proc.returncode is not None:
                raise UsageError(
                    f"{process.name} exited with status {process.proc.returncode} (is its port "
                    f"in use?); see {process.log_path}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200 and await self._alive(process):
                        return
            if time.monotonic() > deadline:
                raise UsageError(f"{url} did not become ready; see {self.data / 'logs'}")
            await asyncio.sleep(0.1)

    @staticmethod
    async def _alive(process: _Process) -> bool:
        """Still running a moment after answering: it is ours that answered."""
        await asyncio.sleep(0.05)
        return process.proc is not None and process.proc.returncode is None

    async def _start_endpoint(self, session: aiohttp.ClientSession, party: str) -> None:
        await self.endpoints[party].start()
        await self._ready(session, self.endpoint_url(party), self.endpoints[party])
        # the officer logs in like a person at the console (a restart ends every session)
        self.logins[party] = await log_in(session, self.endpoint_url(party),
                                          self.operator_name(party), self.passwords[party])

    # ------------------------------------------------------------------ the run

    async def run(self, duration_s: float | None) -> DemoResult:
        self.run_forever = duration_s is None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await self.relay.start()
            try:
                await self._ready(session, self.relay_http, self.relay)
                await asyncio.gather(*(self._start_endpoint(session, e) for e in self.endpoints))
                log.info("demo_started", relay=self.relay_http, endpoints=self.ports)
                await self._play_with_officers(session, duration_s)
            finally:
                # The relay first: its relay_stopped entry closes the availability window, so
                # the endpoints going down one by one afterwards cannot fail a link test.
                await self.relay.stop()
                await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        return self.result

    async def _play_with_officers(
        self, session: aiohttp.ClientSession, duration_s: float | None
    ) -> None:
        """Play the scenario while the simulated officers acknowledge; then settle and check."""
        officers = asyncio.create_task(self._officers(session))
        try:
            await self._play(session)
            await self._settle(session, duration_s)
            await self._check_relay(session)
        finally:
            officers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await officers

    async def _play(self, session: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        for step in self.scenario.steps:
            delay = step.at - (time.monotonic() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self._step(session, step)
            except (aiohttp.ClientError, OSError, UsageError) as exc:
                self.result.failures.append(f"step at {step.at:.1f}s ({step.do}): {exc}")
                log.warning("demo_step_failed", do=step.do, error=str(exc))
        remaining = self.scenario.length_s - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        self.played = True
        if self.run_forever:
            log.info("demo_scenario_played", note="running until Ctrl-C")
            await self.stop_requested.wait()

    async def _settle(self, session: aiohttp.ClientSession, duration_s: float | None) -> None:
        """Bring every endpoint back, then give officers time to acknowledge."""
        for party in sorted(self.offline):
            await self._start_endpoint(session, party)
            self.offline.discard(party)
        grace = 3.0 if duration_s is None else max(2.0, duration_s * 0.1)
        await asyncio.sleep(grace)

    async def _check_relay(self, session: aiohttp.ClientSession) -> None:
        for path in _RELAY_CHECKS:
            async with session.get(self.relay_http + path) as response:
                self.result.checks[path] = response.status
                if path == "/v1/links" and response.status == 200:
                    self.result.links = await response.json()
                if path == "/healthz" and response.status == 200:
                    size = (await response.json()).get("log_size")
                    if isinstance(size, int):
                        self.result.log_end = size  # the shutdown's entries are not reported

    # ------------------------------------------------------------------ steps

    async def _post(self, session: aiohttp.ClientSession, party: str, body: dict[str, Any]) -> str:
        async with session.post(self.endpoint_url(party) + "/api/messages", json=body,
                                headers=self.logins[party]) as response:
            answer = await response.json()
            if response.status != 202:
                raise UsageError(f"{party} refused a {body['t']}: {answer}")
        self.result.sent += 1
        self.scenario_ids.add(str(answer["id"]))
        return str(answer["id"])

    async def _step(self, session: aiohttp.ClientSession, step: Step) -> None:
        fields = dict(step.fields)
        now = _now_ms()
        if step.do == "offline":
            party = fields["endpoint"]
            await self.endpoints[party].stop()
            self.offline.add(party)
            log.info("demo_endpoint_offline", endpoint=party)
            return
        if step.do == "online":
            party = fields["endpoint"]
            await self._start_endpoint(session, party)
            self.offline.discard(party)
            log.info("demo_endpoint_online", endpoint=party)
            return
        sender = fields.pop("from")
        if step.do == "alert":
            await self._alert(session, sender, fields, now)
            return
        if step.do == "text":
            body = {"t": "text", "to": fields["to"], "status": fields.get("status", "actual"),
                    "precedence": fields.get("precedence", "routine"), "text": fields["text"],
                    "lang": fields["lang"]}
            await self._post(session, sender, body)
            return
        if step.do == "warn":
            key = fields.pop("key")
            incident = format_id(make_id(now, os.urandom(10)))
            body = self._warning_body("warning", fields, incident, now)
            message_id = await self._post(session, sender, body)
            self.sent[key] = {**body, "id": message_id}
            return
        original = self.sent.get(fields["ref"])
        if original is None:
            raise UsageError(f"the warning {fields['ref']!r} was never sent")
        if step.do == "update":
            merged: dict[str, Any] = {
                k: original[k] for k in ("to", "status", "precedence", "advice") if k in original
            }
            merged.update(fields)
            body = self._warning_body("update", merged, original["incident"], now)
            body["ref"] = original["id"]
            await self._post(session, sender, body)
            return
        body = {"t": "cancel", "to": original["to"], "status": original["status"],
                "precedence": original["precedence"], "incident": original["incident"],
                "ref": original["id"], "reason": fields["reason"]}
        if "text" in fields:
            body["text"], body["lang"] = fields["text"], fields["lang"]
        await self._post(session, sender, body)

    async def _alert(
        self, session: aiohttp.ClientSession, party: str, fields: dict[str, Any], now: int
    ) -> None:
        """Post to ``party``'s /api/alerts as its sensor: the endpoint makes it a warning,
        or an update when the same sensor track has an open incident."""
        body: dict[str, Any] = {
            k: fields[k]
            for k in ("to", "status", "precedence", "track_id", "advice", "text", "lang")
            if k in fields
        }
        body["track"] = {**fields["track"], "observed_at": now}
        body["expires"] = now + 3_600_000
        predicted = fields.get("predicted")
        if predicted is not None:
            predicted = dict(predicted)
            predicted["crossing_at"] = now + int(float(predicted.pop("in_s")) * 1000)
            body["predicted"] = predicted
        headers = {
            "Authorization": f"Bearer {self.feed_tokens[party]}",
            "Idempotency-Key": os.urandom(16).hex(),  # a sensor's retry would repeat it
        }
        url = self.endpoint_url(party) + "/api/alerts"
        async with session.post(url, json=body, headers=headers) as response:
            answer = await response.json()
            if response.status != 202:
                raise UsageError(f"{party} refused an alert: {answer}")
        self.result.sent += 1
        self.scenario_ids.add(str(answer["id"]))
        log.info("demo_alert_posted", endpoint=party, id=answer["id"], t=answer["t"],
                 incident=answer["incident"])
        key = fields.get("key")
        if isinstance(key, str):
            self.sent[key] = {
                **{k: v for k, v in body.items() if k != "track_id"},
                "to": body.get("to", "*"), "status": body.get("status", "actual"),
                "id": answer["id"], "incident": answer["incident"],
            }

    def _warning_body(
        self, kind: str, fields: dict[str, Any], incident: str, now: int
    ) -> dict[str, Any]:
        track = {**fields["track"], "observed_at": now}
        body: dict[str, Any] = {
            "t": kind, "to": fields["to"], "status": fields["status"],
            "precedence": fields["precedence"], "incident": incident,
            "expires": now + 3_600_000, "track": track,
        }
        predicted = fields.get("predicted")
        if predicted is not None:
            predicted = dict(predicted)
            predicted["crossing_at"] = now + int(float(predicted.pop("in_s")) * 1000)
            body["predicted"] = predicted
        for optional in ("advice", "text", "lang"):
            if optional in fields:
                body[optional] = fields[optional]
        return body

    # ------------------------------------------------------------------ duty officers

    async def _officers(self, session: aiohttp.ClientSession) -> None:
        """Each endpoint's officer acknowledges what arrives after a human delay: the
        scenario's messages (``--officers scenario``, so a person trying the console is not
        raced), every message (``all``), or nothing (``off``)."""
        if self.officers_mode == "off":
            return
        while True:
            for party, officer in self.scenario.officers.items():
                if party in self.offline or party not in self.ports:
                    continue
                with contextlib.suppress(aiohttp.ClientError, OSError, ValueError, KeyError):
                    await self._acknowledge(session, party, officer.ack_after_s,
                                            officer.action, officer.note)
            await asyncio.sleep(0.25)

    async def _acknowledge(
        self, session: aiohttp.ClientSession, party: str, after_s: float, action: str,
        note: str,
    ) -> None:
        url = self.endpoint_url(party)
        async with session.get(url + "/api/inbox", headers=self.logins[party]) as response:
            if response.status != 200:
                return  # restarting: its officer logs in again once it answers
            inbox = await response.json()
        now = _now_ms()
        for item in inbox.get("messages", inbox) if isinstance(inbox, dict) else inbox:
            message_id = str(item["id"])
            if item.get("acknowledged") or (party, message_id) in self.acked:
                continue
            if self.officers_mode == "scenario" and message_id not in self.scenario_ids:
                continue
            received = int(item.get("received_ms") or item.get("received_at") or now)
            if now - received < after_s * 1000:
                continue
            payload = {"action": action, "note": note}
            async with session.post(f"{url}/api/messages/{message_id}/ack", json=payload,
                                    headers=self.logins[party]) as r:
                if r.status in (200, 202, 409):
                    self.acked.add((party, message_id))
                    self.result.acknowledged += r.status != 409


async def run_demo(
    data: Path, base_port: int, scenario: Scenario, duration_s: float | None
) -> DemoResult:
    if base_port < 1024 or base_port > 65_000:
        raise ConfigError("--base-port must leave room for six ports between 1024 and 65535")
    demo = Demo(data, base_port, scenario)
    return await demo.run(duration_s)


async def run_until_stopped(demo: Demo, duration_s: float | None) -> DemoResult:
    """Run ``demo``; SIGINT or SIGTERM stops it cleanly, its child processes included.

    A signal after the scenario was played ends the run as if its time were up
    (the report is still printed); one before cancels it, noted as a failure.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(demo.run(duration_s))

    def interrupt() -> None:
        if demo.played:
            demo.stop_requested.set()
        else:
            task.cancel()

    async def watch_parent() -> None:
        """``kill -INT`` on ``make demo`` reaches make only (hotline.demo.parent)."""
        while not task.done():
            if parent_interrupted():
                log.info("demo_parent_interrupted")
                interrupt()
                return
            await asyncio.sleep(_PARENT_POLL_S)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    watcher = asyncio.create_task(watch_parent())
    try:
        return await task
    except asyncio.CancelledError:
        demo.result.failures.append("interrupted before the scenario was played")
        return demo.result
    finally:
        watcher.cancel()
