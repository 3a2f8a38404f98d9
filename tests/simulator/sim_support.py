"""Helpers shared by the simulator's tests: a thin client, waits, a receiver."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from syncd.simulator import Simulator

FILES = "/v1/external/user/files"
KEY = "test-key"
# Building an SSL context reads the CA bundle, a few hundred milliseconds;
# the tests speak plain HTTP, so every client shares this one.
TLS = ssl.create_default_context()


def wait_for(
    condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Api:
    """A thin client of one simulator, for tests that are not about the client."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.Client(
            base_url=sim.base_url,
            headers={"x-api-key": sim.options.api_key},
            verify=TLS,
        )
        self.storage = httpx.Client(verify=TLS)

    def close(self) -> None:
        self.http.close()
        self.storage.close()

    def create(
        self, pdf: bytes, name: str = "report.pdf", **fields: Any
    ) -> dict[str, Any]:
        body = {"name": name, "size": len(pdf), "mime": "application/pdf", **fields}
        response = self.http.post(FILES, json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def upload(self, url: str, pdf: bytes) -> httpx.Response:
        return self.storage.put(
            url, content=pdf, headers={"Content-Type": "application/pdf"}
        )

    def submit(self, pdf: bytes, name: str = "report.pdf", **fields: Any) -> str:
        """Create a record and upload its bytes; return the file id."""
        record = self.create(pdf, name, **fields)
        response = self.upload(record["uploadUrl"], pdf)
        assert response.status_code == 200, response.text
        return str(record["id"])

    def get(self, file_id: str) -> dict[str, Any]:
        response = self.http.get(f"{FILES}/{file_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_state(
        self, file_id: str, state: str, timeout: float = 5.0
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = self.get(file_id)
            return record if record["state"] == state else None

        found: dict[str, Any] = wait_for(
            reached, timeout, f"file {file_id} to be {state}"
        )
        return found


class Receiver:
    """A webhook receiver: records every POST, answers from a status script."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.deliveries.append((dict(self.headers.items()), body))
                    index = len(receiver.deliveries) - 1
                    scripted = receiver.statuses
                    status = scripted[index] if index < len(scripted) else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.deliveries)
