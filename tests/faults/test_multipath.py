"""Two relays, one withholding (make multipath, reduced): channel_withheld names it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from faults.multipath import _export_and_report, _ready, _text, running
from hotline.testing.operators import operator_headers

BOUND_S = 40.0  # 15 s after the entry is read, with room for the monitor on a loaded machine


@pytest.mark.slow
async def test_a_relay_that_withholds_while_answering_link_tests_is_named(
    tmp_path: Path,
) -> None:
    """osce logs BY's message and never delivers it: LT shows it once, from by,
    GET /api/alarms names osce and the message as channel_withheld, and the two
    relays' bundles report and compare."""
    async with aiohttp.ClientSession() as http, running(tmp_path, http) as net:
        await _ready(net)
        net.osce.armed_at_ms = 1
        net.osce.share = 1.0
        by, lt = net.endpoints["BY"], net.endpoints["LT"]
        message = await by.endpoint.post_message(_text("LT", 1), "duty")
        headers = await operator_headers(http, lt.url)
        alarm = None
        async with asyncio.timeout(BOUND_S):
            while alarm is None:
                await asyncio.sleep(0.5)
                async with http.get(lt.url + "/api/alarms", headers=headers) as response:
                    alarms = (await response.json())["alarms"]
                alarm = next((a for a in alarms if a["event"] == "channel_withheld"), None)
        assert alarm["detail"]["relay"] == "osce"
        assert alarm["ref"] is not None
        assert message in net.osce.withheld
        assert net.osce.withheld[message] == {"LT"}
        inbox = await lt.endpoint.journal.call(lambda j: j.reads.inbox())
        assert [item.id for item in inbox] == [message]
        withheld = [a for a in alarms if a["event"] in ("channel_withheld", "withheld")]
        assert [a["detail"]["relay"] for a in withheld] == ["osce"]
    # both logs export; audit report shows the paths, the logs and journals compare clean
    assert _export_and_report(net)
