"""A lean HTTP/1.1 transport for httpx: asyncio streams, h11, a stack per origin.

httpx's default pool looks at every connection it holds each time a request
starts or ends, with a system call for every idle one. With the dozens of
connections that sixteen uploads and their polls keep open, that scan cost
more CPU than the requests themselves. Here a request takes the most recently
used idle connection of its origin and gives it back when its body has been
read to the end: no scan, no locks.

What it does not do, it leaves to httpx: ``ApiClient`` uses this transport
only when no proxy is configured in the environment (httpx's own transport
handles proxies), and everything above the wire (redirects, auth headers,
cookies, decoding) is httpx's as usual. Only HTTP/1.1 is spoken. The number
of connections is bounded by the callers: every worker has a fixed
concurrency, and at most ``max_idle`` connections per origin stay open
between requests.

Errors are httpx's own exceptions, so callers see no difference: a failed
connect is ``ConnectError`` or ``ConnectTimeout``, a failed send
``WriteError`` or ``WriteTimeout``, a failed or slow read ``ReadError`` or
``ReadTimeout``, and a peer that breaks the protocol or closes mid-answer
``RemoteProtocolError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from typing import TYPE_CHECKING

import h11
import httpx

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

_READ_SIZE = 64 * 1024
# Request bytes are gathered up to this size before each write, so a small
# request (headers and a JSON body) leaves in one system call.
_WRITE_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, keeping idle connections per origin.

    ``keepalive_seconds`` should be shorter than the servers' own keep-alive
    timeout, so a connection is dropped here before the server drops it.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 32,
        keepalive_seconds: float = 4.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._keepalive = keepalive_seconds
        self._idle: dict[Origin, collections.deque[_Connection]] = {}
        self._closed = False
        self.connections_opened = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        timeouts = request.extensions.get("timeout", {})
        origin = _origin(request.url)
        connection = self._take_idle(origin)
        if connection is None:
            connection = await self._connect(origin, timeouts.get("connect"), request)
        try:
            head = await connection.send(request, timeouts)
        except BaseException:
            connection.close()
            raise

        body = _ResponseBody(self, origin, connection, request, timeouts.get("read"))
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers,
            stream=body,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": head.reason,
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(OSError, ssl.SSLError):
                await connection.writer.wait_closed()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable(now, self._keepalive):
                return connection
            connection.close()
        return None

    def _give_back(self, origin: Origin, connection: _Connection) -> None:
        if self._closed or not connection.ready_for_next():
            connection.close()
            return
        idle = self._idle.setdefault(origin, collections.deque())
        idle.append(connection)
        if len(idle) > self._max_idle:
            idle.popleft().close()

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl_context if scheme == "https" else None
        if scheme == "https" and tls is None:
            tls = httpx.create_ssl_context()
            self._ssl_context = tls
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                    limit=_READ_SIZE,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port} timed out", request=request
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(
                f"connecting to {host}:{port}: {exc}", request=request
            ) from exc
        self.connections_opened += 1
        return _Connection(reader, writer)


class _Connection:
    """One HTTP/1.1 connection: a stream pair and h11's view of it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    def reusable(self, now: float, keepalive: float) -> bool:
        """Fresh enough, and not closed by the server while it sat idle."""
        return (
            now - self.idle_since < keepalive
            and not self.reader.at_eof()
            and self.reader.exception() is None
            and not self.writer.is_closing()
        )

    def ready_for_next(self) -> bool:
        """Whether the exchange ended cleanly, so the connection can serve another."""
        if (
            self.protocol.our_state is not h11.DONE
            or self.protocol.their_state is not h11.DONE
        ):
            return False
        self.protocol.start_next_cycle()
        self.idle_since = time.monotonic()
        return True

    def close(self) -> None:
        self.writer.close()

    async def send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> h11.Response:
        """Send ``request`` and read the head of the answer."""
        with _mapped(request, "write"):
            await self._send_request(request, timeouts.get("write"))
        with _mapped(request, "read"):
            while True:
                event = await self.next_event(timeouts.get("read"))
                if isinstance(event, h11.Response):
                    return event
                # An informational answer (100 Continue): the real one follows.

    async def _send_request(
        self, request: httpx.Request, timeout: float | None
    ) -> None:
        target = request.url.raw_path
        head = h11.Request(
            method=request.method, target=target, headers=request.headers.raw
        )
        pending = [self.protocol.send(head) or b""]
        size = len(pending[0])
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("a synchronous request body cannot be sent here")
        async for chunk in request.stream:
            pending.append(self.protocol.send(h11.Data(data=chunk)) or b"")
            size += len(chunk)
            if size >= _WRITE_SIZE:
                await self._write(pending, timeout)
                pending, size = [], 0
        pending.append(self.protocol.send(h11.EndOfMessage()) or b"")
        await self._write(pending, timeout)

    async def _write(self, pieces: list[bytes], timeout: float | None) -> None:
        self.writer.write(b"".join(pieces))
        # Waits only when the socket's buffer is full, as for a large upload.
        async with asyncio.timeout(timeout):
            await self.writer.drain()

    async def next_event(self, timeout: float | None) -> h11.Event:
        """The next thing the server said, reading from the socket as needed."""
        while True:
            event = self.protocol.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                # h11 pauses only after a whole answer, when nothing more is read.
                raise h11.RemoteProtocolError("data after the end of the answer")
            async with asyncio.timeout(timeout):
                data = await self.reader.read(_READ_SIZE)
            if not data and self.protocol.their_state is h11.SEND_RESPONSE:
                raise h11.RemoteProtocolError("the server closed without answering")
            self.protocol.receive_data(data)


class _ResponseBody(httpx.AsyncByteStream):
    """The body of one answer; the connection goes back to its origin's idle
    connections once the body has been read to its end."""

    def __init__(
        self,
        transport: LeanTransport,
        origin: Origin,
        connection: _Connection,
        request: httpx.Request,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: _Connection | None = connection
        self._request = request
        self._timeout = read_timeout
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        with _mapped(self._request, "read"):
            while True:
                event = await connection.next_event(self._timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._complete = True
                    return
                else:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection before the answer ended",
                        request=self._request,
                    )

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete:
            self._transport._give_back(self._origin, connection)
        else:
            # Unread bytes may still arrive: the connection cannot be reused.
            connection.close()


@contextlib.contextmanager
def _mapped(request: httpx.Request, phase: str) -> Iterator[None]:
    """Turn socket and protocol errors of one phase into httpx's exceptions."""
    try:
        yield
    except TimeoutError as exc:
        timeout = httpx.WriteTimeout if phase == "write" else httpx.ReadTimeout
        raise timeout(
            f"{request.method} {request.url.path}: {phase} timed out", request=request
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        error = httpx.WriteError if phase == "write" else httpx.ReadError
        raise error(
            f"{request.method} {request.url.path}: {exc!r}", request=request
        ) from exc
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from exc


def _origin(url: httpx.URL) -> Origin:
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    if port is None:
        raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
    return (url.scheme, url.host, port)
