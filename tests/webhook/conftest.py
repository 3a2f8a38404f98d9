"""A daemon with its HTTP listener on loopback, and one document processing.

The poll interval is five minutes, so during a test nothing but a webhook
can make the document due; a test sees whether a delivery hinted it by
looking at the document's ``not_before`` and at the simulator's downloads.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from syncd.journal import Document, Stage
from syncd.simulator import Simulator, SimulatorOptions
from syncd.simulator.webhooks import signature_headers
from tests.harness import API_KEY, BackgroundDaemon, Tree, make_settings, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = "whsec_c3luY2Qtd2ViaG9vay10ZXN0LXNlY3JldA=="
WEBHOOK_PATH = "/webhooks/accessibledocs"
MAX_BODY_BYTES = 4096
SLOW_POLL = {"interval_seconds": 300, "max_interval_seconds": 300}


@dataclasses.dataclass
class Receiver:
    """What a test needs to talk to the daemon's listener and check on it."""

    sim: Simulator
    running: BackgroundDaemon
    tree: Tree
    client: httpx.Client
    remote_id: str
    scheme: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.daemon.http_port}"

    def document(self) -> Document:
        journal = self.running.daemon.journal
        assert journal is not None
        (doc,) = [d for d in journal.find("a.pdf") if d.remote_id == self.remote_id]
        return doc

    def webhook_seen_at(self) -> float | None:
        context = self.running.daemon.context
        assert context is not None
        return context.webhook_seen_at

    def downloads(self, remote_id: str | None = None) -> list[dict[str, Any]]:
        wanted = remote_id or self.remote_id
        return [
            entry
            for entry in self.sim.requests()
            if entry["origin"] == "api"
            and entry["path"].endswith("/download")
            and entry.get("file_id") == wanted
        ]

    def post(
        self,
        body: bytes,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.client.post(
            WEBHOOK_PATH, content=body, headers=headers or {}, **kwargs
        )

    def deliver(
        self,
        file_id: str | None = None,
        *,
        delivery_id: str = "msg_test_1",
        timestamp: int | None = None,
        secret: str = SECRET,
    ) -> httpx.Response:
        """POST a notification signed the way the simulator signs its own."""
        payload = {
            "id": delivery_id,
            "event": "file_processed",
            "createdAt": "2026-12-03T17:00:00.000Z",
            "data": {"id": file_id or self.remote_id, "state": "completed"},
        }
        body = json.dumps(payload).encode()
        headers = signed_headers(body, delivery_id, timestamp, secret)
        return self.post(body, only_scheme(headers, self.scheme))


def signed_headers(
    body: bytes,
    delivery_id: str = "msg_test_1",
    timestamp: int | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    """Both signature schemes' headers, made by the simulator's own code."""
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": delivery_id,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(stamp),
    }
    headers.update(signature_headers(secret, delivery_id, stamp, body))
    return headers


def only_scheme(headers: dict[str, str], scheme: str) -> dict[str, str]:
    """Keep the headers of one scheme, so it is shown to work on its own."""
    other = "webhook-" if scheme == "hmac-sha256" else "x-"
    return {
        name: value
        for name, value in headers.items()
        if not name.lower().startswith(other)
    }


def receiver_settings(sim: Simulator, tree: Tree, scheme: str, **sections: Any) -> Any:
    webhook = {"enabled": True, "secret": SECRET, "signature": scheme}
    webhook.update(sections.pop("webhook", {}))
    return make_settings(
        sim,
        tree,
        http={"listen": "127.0.0.1:0", "max_body_bytes": MAX_BODY_BYTES},
        webhook=webhook,
        poll=sections.pop("poll", SLOW_POLL),
        **sections,
    )


@pytest.fixture(params=["hmac-sha256", "standard-webhooks"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def receiver(tmp_path: Path, scheme: str) -> Iterator[Receiver]:
    tree = Tree(tmp_path)
    tree.inbox.mkdir()
    options = SimulatorOptions(api_key=API_KEY, processing_seconds=3600)
    with Simulator(options) as sim:
        tree.drop("a.pdf")
        settings = receiver_settings(sim, tree, scheme)
        with BackgroundDaemon(settings) as running:
            journal = running.daemon.journal
            assert journal is not None

            def processing() -> bool:
                return any(
                    doc.stage is Stage.PROCESSING and doc.remote_id
                    for doc in journal.find("a.pdf")
                )

            wait_until(processing, what="the document to be processing")
            (doc,) = journal.find("a.pdf")
            assert doc.remote_id is not None
            url = f"http://127.0.0.1:{running.daemon.http_port}"
            with httpx.Client(base_url=url, timeout=10) as client:
                yield Receiver(sim, running, tree, client, doc.remote_id, scheme)
