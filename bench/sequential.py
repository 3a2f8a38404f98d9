"""The baseline syncd is measured against: one document after another.

A plain script makes the same calls syncd makes for each document, in
order, and waits for nothing it does not have to: create the record, PUT
the bytes, read the record (at once, then every ``--poll-seconds`` until it
is ``completed``), download the result and write it to the outbox. It keeps
one keep-alive connection per host, as a careful hand-written script would.

Run it alone against a simulator that is already running::

    .venv/bin/python -m bench.sequential --base-url http://127.0.0.1:8765 \\
        --api-key sim-key --documents 200

``bench.throughput`` runs it side by side with syncd.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import API_KEY, PURCHASE_ORDER, drop_documents, percentiles

FILES = "/v1/external/user/files"


def run_sequential(
    base_url: str,
    inbox: Path,
    outbox: Path,
    poll_seconds: float,
    api_key: str = API_KEY,
) -> dict[str, Any]:
    """Send every PDF of ``inbox`` through the service, one at a time."""
    outbox.mkdir(parents=True, exist_ok=True)
    paths = sorted(inbox.glob("*.pdf"))
    headers = {"x-api-key": api_key}
    latencies: list[float] = []
    requests = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=60) as api,
        httpx.Client(timeout=60, follow_redirects=True) as storage,
    ):
        for path in paths:
            begun = time.perf_counter()
            data = path.read_bytes()
            body = {
                "name": path.name,
                "size": len(data),
                "mime": "application/pdf",
                "purchaseOrderId": PURCHASE_ORDER,
            }
            record = api.post(FILES, json=body).raise_for_status().json()
            storage.put(
                record["uploadUrl"],
                content=data,
                headers={"Content-Type": "application/pdf"},
            ).raise_for_status()
            requests += 2
            while True:
                state = api.get(f"{FILES}/{record['id']}").raise_for_status().json()
                requests += 1
                if state["state"] == "completed":
                    break
                if state["state"] == "failed" or state.get("refunded"):
                    raise RuntimeError(f"{path.name} failed: {state}")
                time.sleep(poll_seconds)
            result = api.get(f"{FILES}/{record['id']}/download").raise_for_status()
            requests += 1
            (outbox / path.name).write_bytes(result.content)
            latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started

    return {
        "documents": len(paths),
        "seconds": round(elapsed, 3),
        "documents_per_second": round(len(paths) / elapsed, 2),
        "requests": requests,
        "per_document_seconds": percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=0.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as scratch:
        root = Path(scratch)
        drop_documents(root / "inbox", args.documents, prefix="seq")
        result = run_sequential(
            args.base_url,
            root / "inbox",
            root / "outbox",
            args.poll_seconds,
            args.api_key,
        )
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
