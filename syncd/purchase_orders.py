"""The purchase orders documents are billed to, and the pages left on them.

syncd counts a document's pages itself, so it can hold a document while its
purchase order is not approved or has too few pages, instead of uploading it
to be refused (and refunded) by the service. Held documents go as soon as a
refresh shows pages again.

Between two refreshes the book subtracts the pages syncd uploaded itself;
the service reserves them only once it has validated a file, so a fresh
listing can briefly show pages that are already spoken for. That window is
accepted: the service then refuses the file and syncd holds it again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import TYPE_CHECKING

from syncd.errors import ConfigError
from syncd.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from syncd.api import ApiClient, PurchaseOrder
    from syncd.config import Settings
    from syncd.journal import Journal

log = get_logger(__name__)

REFRESH_SECONDS = 120.0
LOW_WATER_FRACTION = 0.10


class PurchaseOrderBook:
    """The account's purchase orders as last read, minus pages spent since."""

    def __init__(
        self,
        api: ApiClient,
        journal: Journal,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._journal = journal
        self._clock = clock
        self._orders: list[PurchaseOrder] = []
        self._spent: collections.Counter[str] = collections.Counter()
        self._warned_low: set[str] = set()
        self.refreshed_at: float | None = None

    @property
    def orders(self) -> list[PurchaseOrder]:
        return list(self._orders)

    async def refresh(self) -> list[PurchaseOrder]:
        """Read the purchase orders again; warn about those running low."""
        orders = await self._api.purchase_orders()
        self._orders = orders
        self._spent.clear()
        self.refreshed_at = self._clock()
        self._journal.put_meta(
            "purchase_orders",
            {
                "read_at": self.refreshed_at,
                "orders": [
                    {
                        "id": order.id,
                        "number": order.number,
                        "status": order.status,
                        "pages": order.pages,
                        "available_pages": order.available_pages,
                    }
                    for order in orders
                ],
            },
        )
        for order in orders:
            self._warn_if_low(order)
        # Held documents get their chance with the new figures at once.
        self._journal.release_holds()

        return orders

    def _warn_if_low(self, order: PurchaseOrder) -> None:
        low = order.pages and order.available_pages < order.pages * LOW_WATER_FRACTION
        if low and order.id not in self._warned_low:
            log.warning(
                "purchase_order.low",
                purchase_order=order.number or order.id,
                available_pages=order.available_pages,
                pages=order.pages,
            )
            self._warned_low.add(order.id)
        elif not low:
            self._warned_low.discard(order.id)

    def find(self, reference: str) -> PurchaseOrder | None:
        """The purchase order whose id or number is ``reference``."""
        for order in self._orders:
            if order.matches(reference):
                return order

        return None

    def require(self, references: Mapping[str, str]) -> None:
        """Raise ``ConfigError`` naming each configured order that does not exist.

        ``references`` maps a key path (``upload.purchase_order``) to the id
        or number written there.
        """
        known = ", ".join(order.number or order.id for order in self._orders)
        problems = [
            f"{key}: purchase order {reference!r} does not exist on this account"
            f" (known: {known or 'none'})"
            for key, reference in references.items()
            if self.find(reference) is None
        ]
        if problems:
            raise ConfigError(problems)

    def available(self, reference: str) -> int:
        order = self.find(reference)
        if order is None:
            return 0
        return order.available_pages - self._spent[order.id]

    def hold_reason(self, reference: str, pages: int) -> str | None:
        """Why a document of ``pages`` cannot go under ``reference`` now, or None."""
        order = self.find(reference)
        if order is None:
            return f"purchase order {reference} is not on this account"
        if order.status != "approved":
            return f"purchase order {reference} is {order.status}, not approved"
        left = self.available(reference)
        if left < pages:
            return (
                f"purchase order {reference} has {left} pages left,"
                f" the document needs {pages}"
            )

        return None

    def spend(self, reference: str, pages: int) -> None:
        order = self.find(reference)
        if order is not None:
            self._spent[order.id] += pages

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Refresh every ``REFRESH_SECONDS`` until ``stopping`` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=REFRESH_SECONDS)
            if stopping.is_set():
                return
            try:
                await self.refresh()
            # A failed refresh keeps the last known figures; the next one
            # tries again. Any error is logged, none may end the loop.
            except Exception as exc:  # noqa: BLE001
                log.warning("purchase_order.refresh_failed", error=str(exc))


def configured_references(settings: Settings) -> dict[str, str]:
    """Each purchase order the configuration names, keyed by where it is set."""
    references = {}
    if settings.upload.purchase_order:
        references["upload.purchase_order"] = settings.upload.purchase_order
    for index, route in enumerate(settings.routes):
        if route.upload.purchase_order:
            key = f"routes[{index}].purchase_order"
            references[key] = route.upload.purchase_order

    return references
