"""``POST /api/messages`` answers JSON nested past the parser's depth with 400, not 500."""

from __future__ import annotations

from pathlib import Path

from hotline.testing.operators import add_operator, operator_headers
from tests.factories import make_network
from tests.feeds.helpers import endpoint_running, http_session


async def test_deeply_nested_json_is_bad_json(tmp_path: Path) -> None:
    """Fifty thousand open brackets are refused as bad_json (they used to raise RecursionError)."""
    add_operator(tmp_path / "LT")
    async with endpoint_running(make_network(), tmp_path, "LT") as running, \
            http_session() as http:
        headers = {"Content-Type": "application/json",
                   **await operator_headers(http, running.url)}
        response = await http.post(running.url + "/api/messages", data=b"[" * 50_000,
                                   headers=headers)
        assert response.status == 400
        assert (await response.json())["error"] == "bad_json"
