"""The ``syncd`` commands, run as a user runs them: a process, a config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from syncd.simulator import PurchaseOrder, Simulator, SimulatorOptions
from syncd.simulator.samples import make_pdf
from tests.harness import API_KEY, Tree, wait_until


def config_file(tree: Tree, simulator: Simulator, **changes: Any) -> Path:
    config: dict[str, Any] = {
        "api": {"base_url": simulator.base_url, "key": "${TEST_API_KEY}"},
        "folders": {
            "inbox": "inbox",
            "outbox": "outbox",
            "archive": "archive",
            "failed": "failed",
        },
        "state_dir": "state",
        "upload": {"purchase_order": "PO-2026-014"},
        "watch": {"settle_seconds": 0.2},
        "poll": {"interval_seconds": 0.2, "max_interval_seconds": 1},
        "http": {"listen": None},
        "logging": {"format": "json"},
    }
    for section, values in changes.items():
        if isinstance(values, dict):
            config[section] = {**config.get(section, {}), **values}
        else:
            config[section] = values
    path = tree.root / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def syncd(
    *args: str, key: str = API_KEY, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TEST_API_KEY": key, **env},
        check=False,
    )


def test_no_command_prints_help_and_exits_2() -> None:
    result = syncd()

    assert result.returncode == 2
    assert "commands" in result.stdout


def test_an_unknown_option_is_a_usage_error() -> None:
    assert syncd("once", "--no-such-flag").returncode == 2


def test_a_missing_config_file_exits_78_naming_it(tmp_path: Path) -> None:
    result = syncd("run", "-c", str(tmp_path / "nope.yaml"))

    assert result.returncode == 78
    assert "nope.yaml" in result.stderr


def test_a_bad_config_exits_78_listing_every_problem(
    simulator: Simulator, tree: Tree
) -> None:
    path = config_file(
        tree, simulator, upload={"concurency": 4}, poll={"interval_seconds": -1}
    )

    result = syncd("once", "-c", str(path))

    assert result.returncode == 78
    assert "upload.concurency" in result.stderr
    assert "poll.interval_seconds" in result.stderr


def test_config_comes_from_syncd_config_when_no_c_is_given(
    simulator: Simulator, tree: Tree
) -> None:
    path = config_file(tree, simulator)

    result = syncd("check", SYNCD_CONFIG=str(path))

    assert result.returncode == 0, result.stderr


def test_check_reports_what_it_checked(simulator: Simulator, tree: Tree) -> None:
    result = syncd("check", "-c", str(config_file(tree, simulator)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted the key" in result.stdout
    assert "PO-2026-014: approved" in result.stdout


def test_a_refused_key_exits_69(simulator: Simulator, tree: Tree) -> None:
    path = config_file(tree, simulator)

    for command in ("check", "once", "purchase-orders"):
        result = syncd(command, "-c", str(path), key="wrong-key")
        assert result.returncode == 69, (command, result.stderr)
        assert "refused the key" in result.stderr
        assert "wrong-key" not in result.stdout + result.stderr


def test_a_purchase_order_that_does_not_exist_exits_78(
    simulator: Simulator, tree: Tree
) -> None:
    path = config_file(tree, simulator, upload={"purchase_order": "PO-404"})

    result = syncd("once", "-c", str(path))

    assert result.returncode == 78
    assert "upload.purchase_order" in result.stderr
    assert "PO-404" in result.stderr


def test_purchase_orders_lists_pages_left(tree: Tree) -> None:
    orders = [
        PurchaseOrder(id="po_1", number="PO-2026-014", pages=500, used_pages=120),
        PurchaseOrder(id="po_2", number="PO-2026-020", status="pending", pages=50),
    ]
    options = SimulatorOptions(api_key=API_KEY, purchase_orders=orders)
    with Simulator(options) as simulator:
        result = syncd("purchase-orders", "-c", str(config_file(tree, simulator)))

    assert result.returncode == 0, result.stderr
    assert "PO-2026-014" in result.stdout and "380" in result.stdout
    assert "PO-2026-020" in result.stdout and "pending" in result.stdout


def test_once_then_status_then_retry(simulator: Simulator, tree: Tree) -> None:
    tree.drop("good.pdf")
    tree.drop("sub/bad.pdf", data=b"not a pdf at all")
    path = config_file(tree, simulator)

    once = syncd("once", "-c", str(path), "--timeout", "60")
    status = syncd("status", "-c", str(path), "--json")

    assert once.returncode == 1, once.stderr
    report = json.loads(status.stdout)
    assert report["stages"]["delivered"] == 1
    assert report["stages"]["failed"] == 1
    (failure,) = report["recent_failures"]
    assert failure["reason"] == "not_pdf"
    assert report["purchase_orders"]["orders"][0]["number"] == "PO-2026-014"
    assert "documents per stage" in syncd("status", "-c", str(path)).stdout

    (tree.failed / "sub/bad.pdf").write_bytes(_pdf())
    retry = syncd("retry", "-c", str(path), str(tree.failed / "sub/bad.pdf"))

    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert (tree.inbox / "sub/bad.pdf").exists()
    assert not (tree.failed / "sub/bad.pdf.error.json").exists()
    assert syncd("once", "-c", str(path)).returncode == 0
    assert tree.listing(tree.outbox) == ["good.pdf", "sub/bad.pdf"]


def test_retry_takes_ids_and_paths_together(simulator: Simulator, tree: Tree) -> None:
    tree.drop("one.pdf", data=b"not a pdf")
    tree.drop("two.pdf", data=b"not a pdf either")
    path = config_file(tree, simulator)
    assert syncd("once", "-c", str(path), "--timeout", "60").returncode == 1
    report = json.loads(syncd("status", "-c", str(path), "--json").stdout)
    ids = {failure["file"]: failure["id"] for failure in report["recent_failures"]}
    (tree.failed / "one.pdf").write_bytes(make_pdf(1, marker="one"))
    (tree.failed / "two.pdf").write_bytes(make_pdf(1, marker="two"))

    retry = syncd(
        "retry", "-c", str(path), str(ids["one.pdf"]), str(tree.failed / "two.pdf")
    )

    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert tree.listing(tree.failed) == []
    assert syncd("once", "-c", str(path), "--timeout", "60").returncode == 0
    assert tree.listing(tree.outbox) == ["one.pdf", "two.pdf"]


def test_retry_of_an_unknown_document_says_so(simulator: Simulator, tree: Tree) -> None:
    result = syncd("retry", "-c", str(config_file(tree, simulator)), "12345")

    assert result.returncode == 1
    assert "not found: 12345" in result.stdout


def test_demo_runs_the_whole_pipeline_and_summarises() -> None:
    result = syncd("demo")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "outbox/   6 files" in result.stdout
    assert "failed/   2 files" in result.stdout
    assert "remote records created: 6" in result.stdout


def _pdf() -> bytes:
    return make_pdf(1, marker="fixed")


def test_milestones_log_at_their_levels_and_status_shows_what_is_held(
    tree: Tree,
) -> None:
    tree.drop("good.pdf", pages=2)
    tree.drop("bad.pdf", data=b"not a pdf at all")
    tree.drop("held/waiting.pdf")
    spent = PurchaseOrder(id="po_9", number="PO-SPENT", pages=10, used_pages=10)
    options = SimulatorOptions(
        api_key=API_KEY,
        processing_seconds=0.2,
        purchase_orders=[PurchaseOrder(id="po_1", number="PO-2026-014"), spent],
    )
    with Simulator(options) as simulator:
        config = config_file(
            tree,
            simulator,
            watch={"settle_seconds": 1},
            routes=[{"folder": "held", "purchase_order": "PO-SPENT"}],
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "once", "-c", str(config)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TEST_API_KEY": API_KEY},
        )
        try:
            # Once the purchase orders are read, the service fails for a
            # while: the create meets it, its retries are logged as warnings.
            wait_until(lambda: _requested(simulator, "GET", "purchase-orders"))
            simulator.set_faults(error_rate=1.0)
            wait_until(lambda: _requested(simulator, "POST", "files", fault="500"))
            simulator.set_faults(error_rate=0.0)
            wait_until(lambda: tree.listing(tree.outbox) == ["good.pdf"])
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
        status = json.loads(syncd("status", "-c", str(config), "--json").stdout)

    events = [json.loads(line) for line in stderr.splitlines()]
    by_file: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        if "file" in event and event["event"].startswith("document."):
            by_file.setdefault(event["file"], []).append(
                (event["event"], event["level"])
            )
    info = [name for name, level in by_file["good.pdf"] if level == "info"]
    assert info == [
        "document.discovered",
        "document.stable",
        "document.uploaded",
        "document.completed",
        "document.delivered",
    ]
    uploaded = next(e for e in events if e["event"] == "document.uploaded")
    assert uploaded["pages"] == 2 and uploaded["remote_id"]
    delivered = next(e for e in events if e["event"] == "document.delivered")
    assert delivered["total_seconds"] is not None
    assert ("document.failed", "error") in by_file["bad.pdf"]
    assert ("document.held", "warning") in by_file["held/waiting.pdf"]
    retries = [e for e in events if e["event"] in ("api.retry", "document.retry")]
    assert retries and {event["level"] for event in retries} == {"warning"}

    # What is held, and why, is in the status, with the pages left.
    (waiting,) = status["oldest_waiting"]
    assert waiting["file"] == "held/waiting.pdf"
    assert "PO-SPENT has 0 pages left" in waiting["held"]
    orders = {o["number"]: o for o in status["purchase_orders"]["orders"]}
    assert orders["PO-SPENT"]["available_pages"] == 0


def _requested(
    simulator: Simulator, method: str, path_end: str, fault: str | None = None
) -> bool:
    return any(
        entry["method"] == method
        and entry["path"].endswith(path_end)
        and (fault is None or entry["fault"] == fault)
        for entry in simulator.requests()
    )
