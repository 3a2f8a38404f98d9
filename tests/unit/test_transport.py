"""syncd's HTTP/1.1 transport against small scripted servers on loopback.

Each server answers with raw bytes, so a test can misbehave exactly as a
real server or a broken network would: close early, stall, cut an answer.
The simulator-backed suites cover the transport in normal use.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from syncd.transport import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _answer(body: bytes = b"ok", *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The body of the next request on the connection, None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return await reader.readexactly(length)


async def _keep_alive(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer every request on the connection with the SHA-256 of its body."""
    while (body := await _read_request(reader)) is not None:
        writer.write(_answer(hashlib.sha256(body).hexdigest().encode()))
        await writer.drain()
    writer.close()


async def _with_server(
    handler: Handler, scenario: Callable[[str, list[int]], Awaitable[Any]]
) -> Any:
    """Run ``scenario(base_url, connections)`` against ``handler``."""
    connections: list[int] = []

    async def counted(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await scenario(f"http://127.0.0.1:{port}", connections)
    finally:
        server.close()
        await server.wait_closed()


def _client(
    base_url: str, transport: LeanTransport, timeout: float = 5.0
) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)


def test_requests_in_a_row_share_one_connection() -> None:
    async def scenario(base_url: str, connections: list[int]) -> list[str]:
        async with _client(base_url, LeanTransport()) as client:
            answers = [
                (await client.post("/", content=b"x%d" % i)).text for i in range(10)
            ]
        assert len(connections) == 1
        return answers

    answers = asyncio.run(_with_server(_keep_alive, scenario))
    assert answers == [hashlib.sha256(b"x%d" % i).hexdigest() for i in range(10)]


def test_concurrent_requests_each_get_a_connection_and_leave_them_for_reuse() -> None:
    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            for _ in range(3):
                answers = await asyncio.gather(*(client.get("/") for _ in range(8)))
                assert all(answer.status_code == 200 for answer in answers)
        assert len(connections) == 8

    asyncio.run(_with_server(_keep_alive, scenario))


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def close_after_one(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(_answer())
        await writer.drain()
        writer.close()

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            for _ in range(3):
                assert (await client.get("/")).text == "ok"
                await asyncio.sleep(0.05)  # the server's close arrives
        assert len(connections) == 3

    asyncio.run(_with_server(close_after_one, scenario))


def test_connection_close_from_the_server_is_honoured() -> None:
    async def says_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await _read_request(reader) is not None:
            writer.write(_answer(extra=b"connection: close\r\n"))
            await writer.drain()

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            for _ in range(3):
                assert (await client.get("/")).text == "ok"
        assert len(connections) == 3

    asyncio.run(_with_server(says_close, scenario))


def test_an_idle_connection_older_than_the_keepalive_is_replaced() -> None:
    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport(keepalive_seconds=0.05)) as client:
            await client.get("/")
            await client.get("/")
            await asyncio.sleep(0.1)
            await client.get("/")
        assert len(connections) == 2

    asyncio.run(_with_server(_keep_alive, scenario))


def test_an_answer_left_unread_closes_its_connection() -> None:
    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            request = client.build_request("GET", "/")
            response = await client.send(request, stream=True)
            await response.aclose()
            assert (await client.get("/")).status_code == 200
        assert len(connections) == 2

    asyncio.run(_with_server(_keep_alive, scenario))


def test_a_streamed_body_arrives_whole_with_its_declared_length() -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    count = 5

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    async def scenario(base_url: str, connections: list[int]) -> str:
        async with _client(base_url, LeanTransport()) as client:
            headers = {"content-length": str(len(chunk) * count)}
            return (await client.put("/", content=chunks(), headers=headers)).text

    digest = asyncio.run(_with_server(_keep_alive, scenario))
    assert digest == hashlib.sha256(chunk * count).hexdigest()


def test_a_cut_answer_is_a_protocol_error_not_a_short_body() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_answer(b"x" * 100)[:-50])
        await writer.drain()
        writer.close()

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            await client.get("/")

    with pytest.raises(
        httpx.RemoteProtocolError, match="without sending complete message body"
    ):
        asyncio.run(_with_server(cut, scenario))


def test_a_server_that_hangs_up_without_answering_is_a_protocol_error() -> None:
    async def hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.close()

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            await client.get("/")

    with pytest.raises(httpx.RemoteProtocolError, match="closed without answering"):
        asyncio.run(_with_server(hang_up, scenario))


def test_a_server_that_stalls_is_a_read_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await reader.read()  # until the client gives up and hangs up

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport(), timeout=0.2) as client:
            await client.get("/")

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(_with_server(stall, scenario))


def test_a_refused_connection_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with _client("http://127.0.0.1:9", LeanTransport()) as client:
            await client.get("/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(scenario())


def test_a_garbled_answer_is_a_protocol_error() -> None:
    async def garble(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()

    async def scenario(base_url: str, connections: list[int]) -> None:
        async with _client(base_url, LeanTransport()) as client:
            await client.get("/")

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(_with_server(garble, scenario))


def test_a_closed_transport_refuses_new_requests() -> None:
    async def scenario(base_url: str, connections: list[int]) -> None:
        transport = LeanTransport()
        async with _client(base_url, transport) as client:
            await client.get("/")
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", base_url))

    asyncio.run(_with_server(_keep_alive, scenario))
