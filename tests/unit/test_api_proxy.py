"""Behind a proxy set in the environment, the API client goes through it."""

from __future__ import annotations

import asyncio
import json

import pytest

from syncd.api import ApiClient
from syncd.config import ApiSettings

ORDERS = [
    {
        "id": "po-1",
        "number": "PO-1",
        "status": "approved",
        "pages": 10,
        "usedPages": 0,
        "availablePages": 10,
    }
]


def test_requests_go_through_the_proxy_named_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        body = json.dumps(ORDERS).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async def scenario() -> list[str]:
        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # The service's host does not exist: only the proxy can answer.
        settings = ApiSettings(base_url="http://accessibledocs.invalid", key="k")
        try:
            async with ApiClient(settings) as api:
                orders = await api.purchase_orders()
        finally:
            server.close()
            await server.wait_closed()
        return [order.id for order in orders]

    assert asyncio.run(scenario()) == ["po-1"]
    assert seen == [
        b"GET http://accessibledocs.invalid/v1/user/purchase-orders HTTP/1.1"
    ]
