"""Settings of the AccessibleDocs simulator and of the faults it injects.

``SimulatorOptions`` holds everything a run needs; every field has a default so
``SimulatorOptions()`` gives a well-behaved service. The fault fields are also
gathered in ``FaultSettings``, the part that may change while the simulator
runs (``Simulator.set_faults`` and ``POST /_sim/faults``).

Defaults follow the contract where it names a value: upload URLs live 15
minutes, files up to 200 MiB are accepted, the example purchase order is
``PO-2026-014``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

DownloadMode = Literal["bytes", "url", "redirect"]
RetryAfterForm = Literal["seconds", "date", "mixed"]
PurchaseOrderStatus = Literal["pending", "approved", "rejected", "closed"]

MIB = 1024 * 1024
DOWNLOAD_MODES: tuple[DownloadMode, ...] = ("bytes", "url", "redirect")
RETRY_AFTER_FORMS: tuple[RetryAfterForm, ...] = ("seconds", "date", "mixed")
PURCHASE_ORDER_STATUSES: tuple[PurchaseOrderStatus, ...] = (
    "pending",
    "approved",
    "rejected",
    "closed",
)


@dataclasses.dataclass
class PurchaseOrder:
    """A purchase order as the dashboard would have set it up.

    Only ``approved`` orders with pages left accept uploads. ``number`` is the
    customer's own reference; a create request may name the order by ``id`` or
    by ``number``.
    """

    id: str
    number: str
    status: PurchaseOrderStatus = "approved"
    pages: int = 100_000
    used_pages: int = 0

    @property
    def available_pages(self) -> int:
        return max(self.pages - self.used_pages, 0)


def _default_purchase_orders() -> list[PurchaseOrder]:
    return [PurchaseOrder(id="po_1", number="PO-2026-014")]


# The transient answers ``error_rate`` can give: a timeout and server errors.
ERROR_STATUSES = (408, 500, 502, 503, 504)


@dataclasses.dataclass(frozen=True)
class FaultSettings:
    """The misbehaviour that can be switched on and off while the server runs.

    The five random faults share one draw per request, so their rates must add
    up to at most 1. ``error_rate`` answers ``error_status`` (500 unless
    set). ``truncate_rate`` only bites on responses that carry a PDF
    (downloads); other requests that draw it are served normally.
    """

    error_rate: float = 0.0
    error_status: int = 500
    rate_429: float = 0.0
    drop_rate: float = 0.0
    lost_answer_rate: float = 0.0
    truncate_rate: float = 0.0
    retry_after_seconds: int = 1
    retry_after_form: RetryAfterForm = "seconds"
    latency_seconds: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_seconds: float = 1.0
    rate_limit_per_second: float | None = None
    expire_upload_urls: bool = False

    def problems(self) -> list[str]:
        """Return one line per invalid field, empty when all are usable."""
        found: list[str] = []
        rates = {
            "error_rate": self.error_rate,
            "rate_429": self.rate_429,
            "drop_rate": self.drop_rate,
            "lost_answer_rate": self.lost_answer_rate,
            "truncate_rate": self.truncate_rate,
            "latency_spike_rate": self.latency_spike_rate,
        }
        for name, value in rates.items():
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                found.append(f"{name}: must be between 0 and 1, got {value!r}")
        shared_rates = (
            "error_rate",
            "rate_429",
            "drop_rate",
            "lost_answer_rate",
            "truncate_rate",
        )
        shared = sum(rates[name] for name in shared_rates)
        if _is_number(shared) and shared > 1.0 + 1e-9:
            found.append(
                f"{' + '.join(shared_rates)}: must not exceed 1, got {shared:g}"
            )
        for name, value in {
            "latency_seconds": self.latency_seconds,
            "latency_spike_seconds": self.latency_spike_seconds,
        }.items():
            if not _is_number(value) or value < 0:
                found.append(f"{name}: must be a number >= 0, got {value!r}")
        if (
            not isinstance(self.retry_after_seconds, int)
            or isinstance(self.retry_after_seconds, bool)
            or self.retry_after_seconds < 0
        ):
            found.append(
                "retry_after_seconds: must be an integer >= 0, "
                f"got {self.retry_after_seconds!r}"
            )
        if self.retry_after_form not in RETRY_AFTER_FORMS:
            found.append(
                f"retry_after_form: must be one of {', '.join(RETRY_AFTER_FORMS)}, "
                f"got {self.retry_after_form!r}"
            )
        if self.error_status not in ERROR_STATUSES:
            found.append(
                f"error_status: must be one of {', '.join(map(str, ERROR_STATUSES))}, "
                f"got {self.error_status!r}"
            )
        limit = self.rate_limit_per_second
        if limit is not None and (not _is_number(limit) or limit <= 0):
            found.append(
                f"rate_limit_per_second: must be None or a number > 0, got {limit!r}"
            )
        if not isinstance(self.expire_upload_urls, bool):
            found.append(
                f"expire_upload_urls: must be true or false, "
                f"got {self.expire_upload_urls!r}"
            )

        return found

    def changed(self, **changes: Any) -> FaultSettings:
        """Return a copy with ``changes`` applied; raise ValueError if unusable."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            message = (
                f"unknown fault setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
            raise ValueError(message)
        updated = dataclasses.replace(self, **changes)
        problems = updated.problems()
        if problems:
            raise ValueError("; ".join(problems))

        return updated

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FAULT_FIELDS = frozenset(field.name for field in dataclasses.fields(FaultSettings))


@dataclasses.dataclass
class SimulatorOptions:
    """Everything one simulator run is configured with.

    Time fields are seconds. ``processing_seconds`` is the time a record spends
    ``in_progress`` after validation; ``validation_seconds`` the time it spends
    in ``validation`` after its bytes arrive. ``storage_dir`` None means a
    temporary folder removed on stop. ``seed`` makes the random faults
    repeatable. ``list_by_state`` False makes the file list refuse a
    ``state`` filter (400), as a service without one would.
    """

    api_key: str = "sim-key"
    admin: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    storage_port: int = 0
    validation_seconds: float = 0.0
    processing_seconds: float = 2.0
    upload_url_ttl_seconds: float = 900.0
    download_url_ttl_seconds: float = 300.0
    honour_idempotency: bool = True
    list_by_state: bool = True
    download_mode: DownloadMode = "bytes"
    max_upload_bytes: int = 200 * MIB
    purchase_orders: list[PurchaseOrder] = dataclasses.field(
        default_factory=_default_purchase_orders
    )
    webhook_secret: str | None = None
    webhook_retry_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    webhook_timeout_seconds: float = 10.0
    webhook_on_failed: bool = True
    result_lang: str = "en-US"
    # Faults; see FaultSettings for their meaning.
    error_rate: float = 0.0
    error_status: int = 500
    rate_429: float = 0.0
    drop_rate: float = 0.0
    lost_answer_rate: float = 0.0
    truncate_rate: float = 0.0
    retry_after_seconds: int = 1
    retry_after_form: RetryAfterForm = "seconds"
    latency_seconds: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_seconds: float = 1.0
    rate_limit_per_second: float | None = None
    expire_upload_urls: bool = False
    seed: int | None = None
    storage_dir: Path | None = None
    log_path: Path | None = None
    log_max_entries: int = 1_000_000

    def faults(self) -> FaultSettings:
        """Return the fault fields of these options as ``FaultSettings``."""
        values = {name: getattr(self, name) for name in FAULT_FIELDS}

        return FaultSettings(**values)

    def problems(self) -> list[str]:
        """Return one line per unusable field, empty when all are usable."""
        found = self.faults().problems()
        if not self.api_key:
            found.append("api_key: must not be empty")
        for name in ("port", "storage_port"):
            port = getattr(self, name)
            if not isinstance(port, int) or not 0 <= port <= 65535:
                found.append(f"{name}: must be a port number or 0, got {port!r}")
        for name in (
            "validation_seconds",
            "processing_seconds",
            "webhook_timeout_seconds",
        ):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                found.append(f"{name}: must be a number >= 0, got {value!r}")
        for name in ("upload_url_ttl_seconds", "download_url_ttl_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                found.append(f"{name}: must be a number > 0, got {value!r}")
        if self.download_mode not in DOWNLOAD_MODES:
            found.append(
                f"download_mode: must be one of {', '.join(DOWNLOAD_MODES)}, "
                f"got {self.download_mode!r}"
            )
        if self.max_upload_bytes <= 0:
            found.append(
                f"max_upload_bytes: must be > 0, got {self.max_upload_bytes!r}"
            )
        if any(not _is_number(s) or s < 0 for s in self.webhook_retry_seconds):
            found.append(
                "webhook_retry_seconds: every wait must be a number >= 0, "
                f"got {self.webhook_retry_seconds!r}"
            )
        found.extend(_purchase_order_problems(self.purchase_orders))
        if self.log_max_entries <= 0:
            found.append(f"log_max_entries: must be > 0, got {self.log_max_entries!r}")

        return found


def _purchase_order_problems(orders: list[PurchaseOrder]) -> list[str]:
    found: list[str] = []
    seen: set[str] = set()
    for index, order in enumerate(orders):
        where = f"purchase_orders[{index}]"
        for ref in (order.id, order.number):
            if ref in seen:
                found.append(f"{where}: id or number {ref!r} is used twice")
            seen.add(ref)
        if order.status not in PURCHASE_ORDER_STATUSES:
            found.append(f"{where}.status: unknown status {order.status!r}")
        if order.pages < 0 or order.used_pages < 0:
            found.append(f"{where}: pages and used_pages must be >= 0")

    return found


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False

    return math.isfinite(value)
