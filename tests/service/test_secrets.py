"""Secrets from systemd's credentials: used, and never written to a log."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING

import pytest
import structlog

from syncd import cli
from syncd.api import ApiClient
from syncd.config import ApiSettings
from syncd.listener import register_webhook
from syncd.logs import REDACTED, get_logger
from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import Tree, wait_until
from tests.service.helpers import DaemonProcess, write_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

API_KEY = f"ak-{uuid.uuid4().hex}"
WEBHOOK_SECRET = f"whs-{uuid.uuid4().hex}"


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    """A folder laid out as systemd's LoadCredential= leaves it."""
    folder = tmp_path / "credentials"
    folder.mkdir(mode=0o700)
    (folder / "api-key").write_text(API_KEY + "\n")
    (folder / "webhook-secret").write_text(WEBHOOK_SECRET + "\n")
    for path in folder.iterdir():
        path.chmod(0o400)
    return folder


@pytest.fixture
def keyed_simulator() -> Iterator[Simulator]:
    options = SimulatorOptions(
        api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, processing_seconds=0.5
    )
    with Simulator(options) as sim:
        yield sim


@pytest.fixture
def reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_the_daemon_uses_credentials_and_never_logs_them(
    keyed_simulator: Simulator, tree: Tree, credentials: Path
) -> None:
    config = tree.root / "config.yaml"
    write_config(
        config,
        keyed_simulator,
        tree,
        api={"key": None},
        http={"listen": "127.0.0.1:0"},
        webhook={"enabled": True},
        # Slow polling, so the webhook is what announces the result.
        poll={"interval_seconds": 30, "max_interval_seconds": 60},
    )
    tree.drop("report.pdf")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}

    with DaemonProcess(config, tree.root, env) as daemon:
        daemon.wait_for_event("http.listening")
        (listening,) = daemon.event("http.listening")
        url = f"http://127.0.0.1:{listening['port']}/webhooks/accessibledocs"
        asyncio.run(_register(keyed_simulator, url))
        wait_until(
            lambda: tree.listing(tree.outbox) == ["report.pdf"],
            timeout=60,
            what="the document in the outbox",
        )
        daemon.wait_for_event("webhook.hint")
        assert daemon.stop() == 0
        output = daemon.output()

    # The key worked (the simulator refuses any other) and the webhook's
    # signature, made with the secret, was accepted.
    statuses = {entry.get("status") for entry in keyed_simulator.requests()}
    assert 401 not in statuses
    assert daemon.event("webhook.rejected") == []
    assert any(entry["level"] == "debug" for entry in daemon.events())
    assert API_KEY not in output
    assert WEBHOOK_SECRET not in output


def test_secrets_are_redacted_by_field_name_and_inside_text(
    keyed_simulator: Simulator,
    tree: Tree,
    credentials: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    reset_logging: None,
) -> None:
    config = tree.root / "config.yaml"
    write_config(config, keyed_simulator, tree, api={"key": None})
    for folder in (tree.outbox, tree.archive, tree.failed, tree.root / "state"):
        folder.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    # The command line sets logging up and registers the secrets it read.
    assert cli.main(["check", "-c", str(config)]) == 0
    assert "accepted the key" in capsys.readouterr().out

    get_logger("probe").info(
        "probe.secrets",
        x_api_key=API_KEY,
        headers={"Authorization": f"Bearer {API_KEY}"},
        note=f"sent {API_KEY} and signed with {WEBHOOK_SECRET}",
        error=ValueError(f"bad key {API_KEY}"),
    )

    line = capsys.readouterr().err.strip()
    assert API_KEY not in line
    assert WEBHOOK_SECRET not in line
    entry = json.loads(line)
    assert entry["x_api_key"] == REDACTED
    assert entry["headers"] == {"Authorization": REDACTED}
    assert entry["note"] == f"sent {REDACTED} and signed with {REDACTED}"
    assert entry["error"] == f"bad key {REDACTED}"


async def _register(simulator: Simulator, url: str) -> None:
    settings = ApiSettings(base_url=simulator.base_url, key=API_KEY)
    async with ApiClient(settings) as api:
        await register_webhook(api, url)
