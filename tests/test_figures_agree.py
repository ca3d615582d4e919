"""Live figures at the relay and ``hotline audit report`` agree on identical traffic.

A real relay and three real endpoints in-process on loopback; warnings are sent
with ``hotline send`` through an endpoint's API, acknowledged through another's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from hotline.auditlog.bundle import Bundle
from hotline.cli.main import main
from hotline.endpoint.events import EndpointEvent, MessageReceived, ReceiptStored
from hotline.endpoint.hub import Subscription
from hotline.figures import LinkFigures
from hotline.network import network_to_toml
from hotline.protocol.vocab import Stage
from hotline.testing.operators import OPERATOR, PASSWORD, operator_headers
from tests.auditlog.logs import entries_for, export, write_log
from tests.console.running import network_running
from tests.factories import TestNet, make_network

TIMEOUT = 20.0


async def _until(
    subscription: Subscription, done: Callable[[EndpointEvent], bool], count: int
) -> None:
    """Wait (bounded) until ``count`` events published after subscribing satisfy ``done``."""
    async with asyncio.timeout(TIMEOUT):
        async for event in subscription:
            count -= done(event)
            if count == 0:
                return


async def _get(url: str, headers: dict[str, str] | None = None) -> object:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return await response.json()


async def _send(api: str, password_file: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "send", "--api", api, "--operator", OPERATOR,
        "--password-file", str(password_file), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


@pytest.mark.slow
async def test_live_figures_and_the_report_agree(tmp_path: Path) -> None:
    """After real traffic the relay's /v1/links equals the figures recomputed from its log."""
    net = make_network()
    async with network_running(net, tmp_path, ("BY", "LT", "PL")) as (relay, endpoints):
        by, lt = endpoints["BY"].url, endpoints["LT"].url
        password = tmp_path / "password"
        password.write_text(PASSWORD + "\n", encoding="utf-8")
        lt_events = endpoints["LT"].endpoint.hub.subscribe()
        by_events = endpoints["BY"].endpoint.hub.subscribe()
        ids = [
            await _send(by, password, "warning", "--to", "LT,PL", "--lat", "54.35", "--lon", "25.9",
                        "--status", "exercise", "--crossing", "BY-LT", "--crossing-in", "240"),
            await _send(by, password, "text", "--to", "LT", "--text", "Do you see it?"),
        ]
        update = await _send(by, password, "update", "--ref", ids[0], "--lat", "54.38",
                             "--lon", "25.84")
        assert update not in ids

        await _until(lt_events, lambda e: isinstance(e, MessageReceived), 3)
        async with aiohttp.ClientSession() as session:
            officer = await operator_headers(session, lt)
            for message_id in ids:
                async with session.post(f"{lt}/api/messages/{message_id}/ack",
                                        json={"action": "monitoring", "note": "seen"},
                                        headers=officer) as r:
                    assert r.status == 202

        await _until(
            by_events,
            lambda e: isinstance(e, ReceiptStored) and e.stage is Stage.ACKNOWLEDGED,
            2,
        )
        async with aiohttp.ClientSession() as session:
            by_officer = await operator_headers(session, by)
        outbox = await _get(by + "/api/outbox", by_officer)
        assert isinstance(outbox, dict)
        acked = [m["id"] for m in outbox["messages"]
                 if (m["recipients"].get("LT") or {}).get("acknowledged")]
        assert sorted(acked) == sorted(ids)
        live = await _get(relay.http_url + "/v1/links")
        assert isinstance(live, dict)
    assert main(["audit", "export", str(tmp_path / "relay"), "--out", str(tmp_path / "b"),
                 "--network", str(_write_network(net, tmp_path))]) == 0
    bundle = Bundle(tmp_path / "b", net.network)
    recomputed = LinkFigures(net.network)
    for index, entry in bundle.entries(bundle.checkpoint().size):
        if index < live["entries"]:
            recomputed.add_entry(index, entry)
    assert recomputed.snapshot() == live
    by_lt = next(x for x in live["links"] if (x["from"], x["to"]) == ("BY", "LT"))
    assert (by_lt["messages"], by_lt["delivered"], by_lt["acknowledged"]) == (3, 3, 2)
    assert by_lt["lead_time_s"]["count"] == 1


def test_the_report_command_prints_the_same_link_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hotline audit report --format json` equals LinkFigures over the same bundle."""
    net = make_network()
    write_log(tmp_path / "log", net, entries_for(net, 200))
    export(tmp_path / "log", net, tmp_path / "b")
    capsys.readouterr()
    assert main(["audit", "report", str(tmp_path / "b"), "--format", "json"]) == 0
    figures = LinkFigures(net.network)
    for index, entry in Bundle(tmp_path / "b", net.network).entries(200):
        figures.add_entry(index, entry)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(figures.snapshot()))


def _write_network(net: TestNet, root: Path) -> Path:
    path = root / "network.toml"
    path.write_text(network_to_toml(net.network))
    return path
