"""The simulator calling the daemon's webhook, and the commands that manage it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import shutil
import socket
import ssl
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from syncd.api import WEBHOOKS_PATH
from syncd.daemon import Daemon
from syncd.errors import ConfigError, ExitCode
from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, BackgroundDaemon, Tree, make_settings, wait_until
from tests.webhook.conftest import SECRET, SLOW_POLL, WEBHOOK_PATH

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from syncd.config import Settings

# Generous on purpose: the webhook brings a document in about a second; a
# poll every five minutes would take far longer than this.
DELIVERY_BOUND_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_settings(
    sim: Simulator, tree: Tree, port: int, poll: dict[str, Any]
) -> Settings:
    settings = make_settings(
        sim,
        tree,
        http={"listen": f"127.0.0.1:{port}"},
        webhook={"enabled": True, "secret": SECRET, "signature": "standard-webhooks"},
        poll=poll,
    )
    # The loader only takes https public URLs, which is right for the real
    # service; the simulator also calls http on loopback, which this needs.
    public_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    webhook = dataclasses.replace(
        settings.webhook, register=True, public_url=public_url
    )
    return dataclasses.replace(settings, webhook=webhook)


def registered(sim: Simulator) -> list[dict[str, str]]:
    headers = {"x-api-key": API_KEY}
    response = httpx.get(sim.base_url + WEBHOOKS_PATH, headers=headers, timeout=10)
    response.raise_for_status()
    hooks: list[dict[str, str]] = response.json()
    return hooks


def requests_to(sim: Simulator, method: str, suffix: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in sim.requests()
        if entry["origin"] == "api"
        and entry["method"] == method
        and entry["path"].endswith(suffix)
    ]


def completed_at(record: dict[str, Any]) -> float:
    stamp = record["updatedAt"].replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(stamp).timestamp()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    options = SimulatorOptions(
        api_key=API_KEY, webhook_secret=SECRET, processing_seconds=1.0
    )
    with Simulator(options) as running:
        yield running


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    tree.inbox.mkdir()
    return tree


def test_documents_reach_the_outbox_soon_after_the_service_completes_them(
    sim: Simulator, tree: Tree
) -> None:
    port = free_port()
    settings = webhook_settings(sim, tree, port, SLOW_POLL)
    names = ["one.pdf", "two.pdf", "three.pdf"]

    with BackgroundDaemon(settings):
        wait_until(lambda: len(registered(sim)) == 1, what="the registration")
        for name in names:
            tree.drop(name)
        seen: dict[str, float] = {}

        def all_arrived() -> bool:
            for name in set(tree.listing(tree.outbox)).intersection(names):
                seen.setdefault(name, time.time())
            return len(seen) == len(names)

        wait_until(all_arrived, timeout=60, what="every result in the outbox")

    (hook,) = registered(sim)
    assert hook["url"] == settings.webhook.public_url
    assert hook["event"] == "file_processed"
    for record in sim.files():
        latency = seen[record["name"]] - completed_at(record)
        assert latency < DELIVERY_BOUND_SECONDS, (record["name"], latency)
    deliveries = [e for e in sim.requests() if e["origin"] == "webhook-out"]
    assert len(deliveries) == len(names)
    assert {entry["status"] for entry in deliveries} == {202}


def test_registration_at_start_is_idempotent(sim: Simulator, tree: Tree) -> None:
    settings = webhook_settings(sim, tree, free_port(), SLOW_POLL)
    other = "https://example.com/someone-elses-hook"
    httpx.post(
        sim.base_url + WEBHOOKS_PATH,
        json={"event": "file_processed", "url": other},
        headers={"x-api-key": API_KEY},
        timeout=10,
    ).raise_for_status()

    for start in (1, 2):
        with BackgroundDaemon(settings):
            wait_until(
                lambda start=start: (
                    len(requests_to(sim, "GET", WEBHOOKS_PATH)) >= start
                ),
                what="the daemon to look at the webhooks",
            )

    urls = sorted(hook["url"] for hook in registered(sim))
    assert urls == sorted([other, str(settings.webhook.public_url)])
    assert len(requests_to(sim, "POST", WEBHOOKS_PATH)) == 2  # ours and the other


def test_a_webhook_racing_the_poller_downloads_each_document_once(
    sim: Simulator, tree: Tree
) -> None:
    fast_poll = {"interval_seconds": 0.2, "max_interval_seconds": 0.3}
    settings = webhook_settings(sim, tree, free_port(), fast_poll)
    names = [f"doc-{index}.pdf" for index in range(6)]

    with BackgroundDaemon(settings):
        wait_until(lambda: len(registered(sim)) == 1, what="the registration")
        for name in names:
            tree.drop(name)
        wait_until(
            lambda: tree.listing(tree.archive) == sorted(names),
            timeout=60,
            what="every document delivered",
        )
        wait_until(
            lambda: (
                sum(e["origin"] == "webhook-out" for e in sim.requests()) >= len(names)
            ),
            what="every webhook delivered",
        )

    assert tree.listing(tree.outbox) == sorted(names)
    downloads = requests_to(sim, "GET", "/download")
    by_file = sorted(entry["file_id"] for entry in downloads)
    assert by_file == sorted(record["id"] for record in sim.files())


def test_a_port_in_use_is_a_configuration_error(sim: Simulator, tree: Tree) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(sim, tree, http={"listen": f"127.0.0.1:{port}"})

        with pytest.raises(ConfigError) as caught:
            asyncio.run(Daemon(settings).run())

    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.problems == [
        f"http.listen: cannot listen on 127.0.0.1:{port}: address in use"
    ]


def write_config(tree: Tree, sim: Simulator, extra: str = "") -> Path:
    path = tree.root / "config.yaml"
    path.write_text(
        f"api:\n  base_url: {sim.base_url}\n  key: {API_KEY}\n"
        "folders:\n  inbox: inbox\n  outbox: outbox\n  failed: failed\n"
        "state_dir: state\n"
        "logging:\n  level: warning\n  format: json\n" + extra,
        encoding="utf-8",
    )
    return path


def syncd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_syncd_run_exits_78_when_the_port_is_in_use(sim: Simulator, tree: Tree) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tree, sim, f"http:\n  listen: 127.0.0.1:{port}\n")

        result = syncd("run", "-c", str(config))

    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert f"http.listen: cannot listen on 127.0.0.1:{port}: address in use" in (
        result.stderr
    )


def test_the_webhooks_commands_list_register_and_delete(
    sim: Simulator, tree: Tree
) -> None:
    url = "https://syncd.example.com/webhooks/accessibledocs"
    config = str(
        write_config(
            tree, sim, f"http:\n  listen: null\nwebhook:\n  public_url: {url}\n"
        )
    )

    empty = syncd("webhooks", "list", "-c", config)
    first = syncd("webhooks", "register", "-c", config)
    again = syncd("webhooks", "register", "-c", config)
    other = syncd("webhooks", "register", "https://other.example.com/x", "-c", config)
    listed = syncd("webhooks", "list", "-c", config)
    hooks = {hook["url"]: hook["id"] for hook in registered(sim)}
    deleted = syncd("webhooks", "delete", hooks[url], "-c", config)
    missing = syncd("webhooks", "delete", hooks[url], "-c", config)

    assert (empty.returncode, empty.stdout) == (0, "no webhooks\n")
    assert first.returncode == 0
    assert first.stdout.startswith("registered ")
    assert again.returncode == 0
    assert again.stdout.startswith("already registered: ")
    assert other.returncode == 0
    assert len(requests_to(sim, "POST", WEBHOOKS_PATH)) == 2
    assert listed.returncode == 0
    assert url in listed.stdout
    assert "https://other.example.com/x" in listed.stdout
    assert hooks[url] in listed.stdout
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted {hooks[url]}\n")
    assert missing.returncode == ExitCode.SOME_FAILED
    assert "no webhook with id" in missing.stderr
    assert [hook["url"] for hook in registered(sim)] == ["https://other.example.com/x"]


def test_webhooks_register_without_a_url_is_a_usage_error(
    sim: Simulator, tree: Tree
) -> None:
    config = str(write_config(tree, sim, "http:\n  listen: null\n"))

    result = syncd("webhooks", "register", "-c", config)

    assert result.returncode == ExitCode.USAGE
    assert "webhook.public_url" in result.stderr
    assert registered(sim) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_the_listener_serves_https_with_a_certificate(
    sim: Simulator, tree: Tree
) -> None:
    cert, key = tree.root / "cert.pem", tree.root / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    http = {
        "listen": "127.0.0.1:0",
        "tls_cert_file": str(cert),
        "tls_key_file": str(key),
    }
    settings = make_settings(sim, tree, http=http)

    with BackgroundDaemon(settings) as running:
        port = running.daemon.http_port
        trusted = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(
            f"https://127.0.0.1:{port}/healthz", verify=trusted, timeout=10
        )

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unreadable_tls_files_are_a_configuration_error(
    sim: Simulator, tree: Tree
) -> None:
    missing = tree.root / "missing.pem"
    http = {
        "listen": "127.0.0.1:0",
        "tls_cert_file": str(missing),
        "tls_key_file": str(missing),
    }
    settings = make_settings(sim, tree, http=http)

    with pytest.raises(ConfigError) as caught:
        asyncio.run(Daemon(settings).run())

    (problem,) = caught.value.problems
    assert problem.startswith("http.tls_cert_file: cannot load the certificate")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_listener_takes_a_bracketed_ipv6_address(
    sim: Simulator, tree: Tree
) -> None:
    settings = make_settings(sim, tree, http={"listen": "[::1]:0"})

    with BackgroundDaemon(settings) as running:
        port = running.daemon.http_port
        response = httpx.get(f"http://[::1]:{port}/healthz", timeout=10)

    assert response.status_code == 200
