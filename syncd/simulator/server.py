"""Running the simulator: in a background thread for tests, or in the foreground.

``Simulator`` starts both origins on their own event loop in a daemon thread
and offers thread-safe inspection and test helpers; use it as a context
manager. ``serve`` runs the same servers in the caller's event loop until a
stop event is set or the task is cancelled (the CLI uses it).

Both origins are uvicorn servers sharing one loop. Their sockets are bound
before the servers start, so ports chosen by the OS (port 0) are known up
front and the API can hand out storage URLs from its first request.
uvicorn's own signal handling is switched off: the owner of the loop decides
when to stop, and two servers in one process would otherwise race for
SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from syncd.simulator.api import ApiRoutes, AuthMiddleware, api_error, http_error
from syncd.simulator.control import ControlRoutes
from syncd.simulator.faults import (
    ConnectionAwareH11Protocol,
    FaultController,
    FaultMiddleware,
)
from syncd.simulator.options import SimulatorOptions
from syncd.simulator.replies import ApiError
from syncd.simulator.requestlog import LogMiddleware, RequestLog
from syncd.simulator.state import Store
from syncd.simulator.storage import StorageApp, UrlSigner
from syncd.simulator.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from types import TracebackType

    from starlette.types import ASGIApp

    from syncd.simulator.options import FaultSettings

_TICK_SECONDS = 0.02
_START_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 15.0
_GRACEFUL_SHUTDOWN_SECONDS = 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _Runtime:
    """Everything one run owns: bound sockets, state, apps and servers."""

    def __init__(self, options: SimulatorOptions) -> None:
        problems = options.problems()
        if problems:
            raise ValueError("invalid simulator options: " + "; ".join(problems))
        self.options = options
        self._sockets = [
            _bind(options.host, options.port),
            _bind(options.host, options.storage_port),
        ]
        host = f"[{options.host}]" if ":" in options.host else options.host
        api_port, storage_port = (s.getsockname()[1] for s in self._sockets)
        self.base_url = f"http://{host}:{api_port}"
        self.storage_url = f"http://{host}:{storage_port}"

        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if options.storage_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="syncd-simulator-")
            self.directory = Path(self._scratch.name)
        else:
            self.directory = options.storage_dir
            self.directory.mkdir(parents=True, exist_ok=True)

        self.store = Store(options)
        self.log = RequestLog(options.log_max_entries, options.log_path)
        self.faults = FaultController(options.faults(), options.seed)
        self.control = ControlRoutes(self.store, self.log, self.faults)
        self.dispatcher = WebhookDispatcher(options, self.store, self.log)
        signer = UrlSigner(secrets.token_bytes(32))
        handlers = {ApiError: api_error, HTTPException: http_error}

        api_routes = ApiRoutes(
            options, self.store, signer, self.faults, self.storage_url
        )
        api = Starlette(
            routes=api_routes.routes() + self.control.routes(),
            exception_handlers=handlers,
        )
        storage = StorageApp(options, self.store, signer, self.directory).app()
        self._apps: list[ASGIApp] = [
            self._instrumented(AuthMiddleware(api, options), "api"),
            self._instrumented(storage, "storage"),
        ]

    def _instrumented(self, app: ASGIApp, origin: str) -> ASGIApp:
        return LogMiddleware(
            FaultMiddleware(app, self.faults, origin), self.log, origin
        )

    async def run(
        self,
        stop: asyncio.Event,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Serve until ``stop`` is set or the task is cancelled, then shut down."""
        servers = [
            _Server(
                uvicorn.Config(
                    app,
                    log_config=None,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    http=ConnectionAwareH11Protocol,
                    # Clients connect directly; there is no proxy whose
                    # forwarded headers would need reading on every request.
                    proxy_headers=False,
                    timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
                )
            )
            for app in self._apps
        ]
        tasks = [
            asyncio.create_task(server.serve(sockets=[sock]))
            for server, sock in zip(servers, self._sockets, strict=True)
        ]
        ticker = asyncio.create_task(self._tick())
        try:
            await _until_started(servers, tasks)
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.dispatcher.close()

    def close(self) -> None:
        """Release what outlives the loop: sockets, log file, scratch folder."""
        for sock in self._sockets:
            sock.close()
        self.log.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    async def _tick(self) -> None:
        # Transitions are also applied on every read; the ticker is what makes
        # webhooks fire within a tick of a record finishing.
        while True:
            self.store.advance(time.time())
            for event in self.store.take_events():
                self.dispatcher.announce(event)
            await asyncio.sleep(_TICK_SECONDS)


async def serve(
    options: SimulatorOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Run the simulator in the current event loop.

    Returns once ``stop`` is set; runs until cancelled when it is None.
    ``on_ready`` receives the API and storage base URLs once both accept
    connections. Raise ValueError for unusable options, OSError when a port
    cannot be bound.
    """
    runtime = _Runtime(options)

    def ready() -> None:
        if on_ready is not None:
            on_ready(runtime.base_url, runtime.storage_url)

    try:
        await runtime.run(stop or asyncio.Event(), ready)
    finally:
        runtime.close()


class Simulator:
    """A running AccessibleDocs simulator for tests, benchmarks and the demo.

    ``with Simulator(options) as sim:`` starts the API and storage origins on
    a background thread and returns once both accept connections. Every
    method is safe to call from any thread while it runs.
    """

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self._runtime: _Runtime | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Simulator:
        """Start both servers; raise if they do not come up."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._runtime = _Runtime(self.options)
        self._thread = threading.Thread(
            target=self._thread_main, name="syncd-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_SECONDS) or self._failure is not None:
            self.stop()
            message = f"the simulator did not start: {self._failure!r}"
            raise RuntimeError(message) from self._failure

        return self

    def stop(self) -> None:
        """Stop both servers and remove the scratch folder. Safe to repeat."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is not None:
            if loop is not None and stop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            thread.join(_STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                raise RuntimeError("the simulator thread did not stop in time")
        if self._runtime is not None:
            self._runtime.close()
        self._runtime = None
        self._thread = self._loop = self._stop = None

    @property
    def base_url(self) -> str:
        """The API origin, e.g. ``http://127.0.0.1:41234``."""
        return self._running().base_url

    @property
    def storage_url(self) -> str:
        """The storage origin that signed upload and download URLs point to."""
        return self._running().storage_url

    def requests(self) -> list[dict[str, Any]]:
        """Return every logged request, oldest first (see ``requestlog``)."""
        return self._running().log.entries()

    def creates(self) -> int:
        """Return how many file records were created (replays not counted)."""
        return self._running().store.creates()

    def leaks(self) -> int:
        """Return how many storage-origin requests carried ``x-api-key``."""
        return self._running().log.leaks()

    def files(self) -> list[dict[str, Any]]:
        """Return every file object, in creation order."""
        views = self._running().store.all_files(time.time())
        return [view.object for view in views]

    def file(self, file_id: str) -> dict[str, Any]:
        """Return one file object; raise KeyError for an unknown id."""
        view = self._running().store.get(file_id, time.time())
        if view is None:
            raise KeyError(file_id)

        return view.object

    def purchase_orders(self) -> list[dict[str, Any]]:
        return self._running().store.purchase_orders()

    def update_purchase_order(self, reference: str, **changes: Any) -> dict[str, Any]:
        """Change a purchase order (``status``, ``pages``...) as its owner would."""
        return self._running().store.update_purchase_order(reference, **changes)

    def stats(self) -> dict[str, Any]:
        """Return what ``GET /_sim/stats`` answers."""
        return self._running().control.snapshot()

    def result_bytes(self, file_id: str) -> bytes:
        """Return the processed PDF exactly as a download delivers it.

        Raise KeyError for an unknown id, ValueError when the record has no
        result (no bytes yet, or unreadable bytes).
        """
        view = self._running().store.get(file_id, time.time())
        if view is None:
            raise KeyError(file_id)
        if view.source is None or view.update is None:
            raise ValueError(f"file {file_id} has no processed result ({view.state})")

        return view.source.read_bytes() + view.update

    def set_faults(self, **changes: Any) -> FaultSettings:
        """Change fault settings at run time; raise ValueError if unusable."""
        return self._running().faults.update(**changes)

    def complete_now(self, file_id: str) -> dict[str, Any]:
        """Finish a record that has its bytes at once; return its file object."""
        return self._running().store.complete_now(file_id, time.time()).object

    def fail_now(
        self, file_id: str, message: str = "failed by the test"
    ) -> dict[str, Any]:
        """Fail a record at once, refunding its pages; return its file object."""
        return self._running().store.fail_now(file_id, message, time.time()).object

    def _running(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("the simulator has not been started")

        return self._runtime

    def _thread_main(self) -> None:
        runtime = self._running()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await runtime.run(self._stop, self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._failure = exc
        finally:
            self._ready.set()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it. asyncio only sets it on sockets
        # made with proto IPPROTO_TCP, and without it uvicorn's separate
        # writes of head and body meet the client's delayed ACK: 40 ms on
        # every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise

    return sock


async def _until_started(
    servers: list[_Server], tasks: list[asyncio.Task[None]]
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not all(server.started for server in servers):
        for task in _finished(tasks):
            # A server that ended before starting has failed; surface why.
            task.result()
            raise RuntimeError("a simulator server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("the simulator servers did not start in time")
        await asyncio.sleep(0.005)


def _finished(tasks: list[asyncio.Task[None]]) -> Iterator[asyncio.Task[None]]:
    return (task for task in tasks if task.done())
