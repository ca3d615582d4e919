"""``POST /api/alerts`` reads only application/json: any other Content-Type is 415."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_network
from tests.feeds.helpers import TOKEN, endpoint_running, http_session, radar_feed, write_feeds


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml", None])
async def test_an_alert_that_is_not_json_is_415(tmp_path: Path, content_type: str | None) -> None:
    """A feed posting another media type gets 415 unsupported_media_type on content-type."""
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    async with endpoint_running(make_network(), tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        async with http.post(running.url + "/api/alerts", data=b"{}",
                             headers=headers) as response:
            assert response.status == 415
            answer = await response.json()
    assert (answer["error"], answer["field"]) == ("unsupported_media_type", "content-type")
