"""While ``hotline demo`` runs: the console, the feed API and CAP export, as users meet them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import xmlschema
from playwright.async_api import async_playwright

from hotline.endpoint.login_client import log_in
from hotline.testing.ports import free_port_run
from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS

XSD = Path(__file__).parent / "vectors" / "cap" / "CAP-v1.2.xsd"
TIMEOUT = 30.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium binary (CI installs one)"),
]


@contextlib.asynccontextmanager
async def demo_running(data: Path, base: int) -> AsyncIterator[asyncio.subprocess.Process]:
    log = (data.parent / "demo.out").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "demo", "--data", str(data), "--base-port", str(base),
        "--duration", "60", stdout=log, stderr=log,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 60)
        log.close()


def _password(data: Path, party: str) -> str:
    return (data / "operators" / f"{party}.password").read_text(encoding="utf-8").strip()


async def _ready(session: aiohttp.ClientSession, url: str) -> None:
    """Wait (bounded) until a process started by the demo answers its health check."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)  # another process is starting: there is no event to await


async def _received(stream: aiohttp.ClientResponse, message_id: str) -> None:
    """Wait on an endpoint's live event stream until ``message_id`` arrives."""
    async with asyncio.timeout(TIMEOUT):
        async for line in stream.content:
            if line.startswith(b"data:") and message_id.encode() in line:
                event = json.loads(line[5:])
                if event.get("event") == "message_received":
                    return


async def test_console_feeds_and_cap_work_while_the_demo_runs(tmp_path: Path) -> None:
    """LT's console loads nothing from outside; LT's feed reaches BY; BY exports valid CAP."""
    base = free_port_run(6)
    by, lt = f"http://127.0.0.1:{base + 1}", f"http://127.0.0.1:{base + 2}"
    data = tmp_path / "d"
    async with demo_running(data, base), aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT)
    ) as session:
        await _ready(session, lt)
        await _ready(session, by)

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            hosts: set[str] = set()
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            await page.goto(lt + "/")
            # the demo printed the password of LT's officer; the console asks for it
            await page.fill("#login-name", "duty-lt")
            await page.fill("#login-password", _password(data, "LT"))
            await page.press("#login-password", "Enter")
            await page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT * 1000)
            await page.wait_for_load_state("networkidle")
            await browser.close()
        assert hosts == {f"127.0.0.1:{base + 2}"}
        session.headers.update(await log_in(session, by, "duty-by", _password(data, "BY")))

        token = (data / "feeds" / "LT.token").read_text().strip()
        track: dict[str, object] = {
            "lat": 54.62, "lon": 25.45, "observed_at": 1_764_000_000_000, "object": "uav",
            "confidence": 0.8, "source": "radar", "sensor_id": "LT-RAD-9",
        }
        alert = {"to": ["BY"], "precedence": "flash", "status": "exercise", "track": track}
        async with session.post(lt + "/api/alerts", json=alert) as response:
            assert response.status == 401
        bad = {**alert, "track": {**track, "lat": 95}}
        auth = {"Authorization": f"Bearer {token}"}
        async with session.post(lt + "/api/alerts", json=bad, headers=auth) as response:
            assert response.status == 422
            assert (await response.json())["field"] == "track.lat"
        async with session.get(by + "/api/events") as stream:
            await stream.content.readline()  # the snapshot has begun: we are subscribed
            async with session.post(lt + "/api/alerts", json=alert, headers=auth) as response:
                assert response.status == 202
                message_id = (await response.json())["id"]
            await _received(stream, message_id)
        async with session.get(by + "/api/inbox") as response:
            inbox = await response.json()
        assert message_id in {m["id"] for m in inbox["messages"]}
        async with session.get(f"{by}/api/messages/{message_id}.cap") as response:
            assert response.status == 200
            cap = await response.read()
    xmlschema.XMLSchema(str(XSD)).validate(cap.decode())
    assert b"Z<" not in cap
