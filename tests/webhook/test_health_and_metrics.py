"""``/healthz`` and ``/metrics`` of a running daemon."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from syncd.listener import STUCK_WORKER_SECONDS, Exposition, Listener
from syncd.poller import Poller
from syncd.workers import Runner
from tests.harness import wait_until

if TYPE_CHECKING:
    from tests.webhook.conftest import Receiver

# One line of the text exposition format: a comment or a sample.
HELP = re.compile(r"# HELP (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) .*")
TYPE = re.compile(
    r"# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r" (?P<kind>counter|gauge|histogram|summary|untyped)"
)
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    rf"(?:\{{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}"
    rf"(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*)\}})?"
    r" (?P<value>[-+]?(?:\d+(?:\.\d+)?(?:e[-+]?\d+)?|Inf|NaN))"
)
FAMILIES = {
    "syncd_documents": "gauge",
    "syncd_uploads_total": "counter",
    "syncd_downloads_total": "counter",
    "syncd_failures_total": "counter",
    "syncd_api_requests_total": "counter",
    "syncd_api_retries_total": "counter",
    "syncd_purchase_order_pages_left": "gauge",
    "syncd_stage_duration_seconds": "histogram",
    "syncd_webhooks_received_total": "counter",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture
def scheme() -> str:
    """One scheme is enough here; the endpoint tests cover both."""
    return "hmac-sha256"


def parse_exposition(text: str) -> dict[str, float]:
    """Check every line and return ``{"name{labels}": value}``."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if match := HELP.fullmatch(line):
            continue
        if match := TYPE.fullmatch(line):
            declared[match["name"]] = match["kind"]
            continue
        match = SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = name
        for suffix in HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if declared.get(base) == "histogram":
                family = base
        assert family in declared, f"sample before its # TYPE: {line!r}"
        key = f"{name}{{{match['labels'] or ''}}}"
        assert key not in samples, f"repeated sample: {line!r}"
        samples[key] = float(match["value"].replace("Inf", "inf"))
    for family, kind in FAMILIES.items():
        assert declared.get(family) == kind, family

    return samples


def test_healthz_answers_200_with_every_part(receiver: Receiver) -> None:
    response = receiver.client.get("/healthz")

    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert report["journal"] == {"open": True, "writable": True}
    assert report["watcher"]["alive"] is True
    assert report["watcher"]["mode"] in ("native", "polling")
    assert report["api_reachable"] is True
    assert report["stages"]["processing"] == 1
    assert set(report["workers"]) == {
        "settler",
        "uploader",
        "poller",
        "downloader",
        "finisher",
    }
    assert all(age < STUCK_WORKER_SECONDS for age in report["workers"].values())


def test_healthz_answers_503_while_a_worker_is_stuck(receiver: Receiver) -> None:
    daemon = receiver.running.daemon
    assert daemon.context is not None
    stuck = Runner(Poller(daemon.context))
    stuck.last_beat = time.monotonic() - STUCK_WORKER_SECONDS - 5
    daemon.runners.append(stuck)
    try:
        response = receiver.client.get("/healthz")
    finally:
        daemon.runners.remove(stuck)

    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "failing"
    assert report["problems"] == ["worker poller stuck"]
    assert report["workers"]["poller"] > STUCK_WORKER_SECONDS
    assert receiver.client.get("/healthz").status_code == 200


def test_health_is_failing_once_the_journal_is_closed(receiver: Receiver) -> None:
    daemon = receiver.running.daemon
    journal = daemon.journal
    assert journal is not None
    listener = Listener(daemon)
    receiver.running.stop()

    report = listener.health()

    assert report["status"] == "failing"
    assert report["journal"] == {"open": False, "writable": False}
    assert "journal not writable" in report["problems"]


def test_metrics_parse_as_prometheus_text_with_every_family(
    receiver: Receiver,
) -> None:
    receiver.sim.complete_now(receiver.remote_id)
    assert receiver.deliver().status_code == 202
    assert receiver.deliver("someone-else").status_code == 202
    assert receiver.post(b"{}", {}).status_code == 401
    wait_until(lambda: receiver.tree.listing(receiver.tree.archive) == ["a.pdf"])

    response = receiver.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(response.text)
    assert samples['syncd_documents{stage="delivered"}'] == 1
    assert samples['syncd_documents{stage="processing"}'] == 0
    assert samples["syncd_uploads_total{}"] == 1
    assert samples["syncd_downloads_total{}"] == 1
    assert samples['syncd_webhooks_received_total{result="accepted"}'] == 1
    assert samples['syncd_webhooks_received_total{result="ignored"}'] == 1
    assert samples['syncd_webhooks_received_total{result="rejected"}'] == 1
    assert samples['syncd_api_requests_total{status="200"}'] >= 3
    assert samples["syncd_api_retries_total{}"] == 0
    assert samples['syncd_purchase_order_pages_left{purchase_order="PO-2026-014"}'] > 0
    for phase in ("settle", "upload", "processing", "delivery"):
        labels = f'stage="{phase}"'
        assert samples[f"syncd_stage_duration_seconds_count{{{labels}}}"] == 1
        infinite = f'syncd_stage_duration_seconds_bucket{{{labels},le="+Inf"}}'
        assert samples[infinite] == 1
        buckets = [
            value
            for key, value in samples.items()
            if key.startswith(f"syncd_stage_duration_seconds_bucket{{{labels},")
        ]
        assert buckets == sorted(buckets), "buckets must be cumulative"


def test_metrics_count_failures_by_reason(receiver: Receiver) -> None:
    receiver.sim.fail_now(receiver.remote_id, "could not be remediated")
    assert receiver.deliver().status_code == 202
    wait_until(lambda: receiver.tree.listing(receiver.tree.failed) != [])

    samples = parse_exposition(receiver.client.get("/metrics").text)

    assert samples['syncd_failures_total{reason="rejected_by_service"}'] == 1
    assert samples['syncd_documents{stage="failed"}'] == 1


def test_the_exposition_escapes_label_values_and_help_text() -> None:
    out = Exposition()
    out.family("syncd_x", "gauge", "Back\\slash and\nnewline.")
    out.sample("syncd_x", 1.5, name='a "quoted" \\ value\nwith a newline')

    text = out.text()

    assert text == (
        "# HELP syncd_x Back\\\\slash and\\nnewline.\n"
        "# TYPE syncd_x gauge\n"
        'syncd_x{name="a \\"quoted\\" \\\\ value\\nwith a newline"} 1.5\n'
    )
    assert SAMPLE.fullmatch(text.splitlines()[2])


def test_the_exposition_writes_cumulative_histogram_buckets() -> None:
    out = Exposition()
    out.family("syncd_h", "histogram", "A histogram.")
    out.histogram("syncd_h", [0.5, 3.0, 3.0, 100.0], (1.0, 5.0), stage="x")

    lines = out.text().splitlines()[2:]

    assert lines == [
        'syncd_h_bucket{stage="x",le="1"} 1',
        'syncd_h_bucket{stage="x",le="5"} 3',
        'syncd_h_bucket{stage="x",le="+Inf"} 4',
        'syncd_h_sum{stage="x"} 106.5',
        'syncd_h_count{stage="x"} 4',
    ]


def test_healthz_and_metrics_refuse_other_methods(receiver: Receiver) -> None:
    assert receiver.client.post("/healthz").status_code == 405
    assert receiver.client.delete("/metrics").status_code == 405
