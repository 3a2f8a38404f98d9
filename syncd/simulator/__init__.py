"""A faithful simulator of the AccessibleDocs remediation API.

It follows ``accessibledocs-api.md`` point by point, documented and assumed
points alike, so that the daemon's tests, its benchmarks, ``syncd demo`` and
curious users can run against something that behaves like the service:
two origins (the API and a separate storage host for signed upload and
download URLs), records that move through validation and processing,
purchase orders that lose pages, signed webhooks, and faults on demand.

Typical use::

    from syncd.simulator import Simulator, SimulatorOptions

    with Simulator(SimulatorOptions(processing_seconds=0.1)) as sim:
        client = httpx.Client(base_url=sim.base_url,
                              headers={"x-api-key": sim.options.api_key})
        ...

Module map: ``options`` (settings), ``state`` (records, purchase orders, state
machine), ``api`` (API origin), ``storage`` (storage origin, URL signing),
``pdf`` (page counting, processed result), ``webhooks`` (deliveries),
``faults`` (fault injection), ``requestlog`` (request log), ``control``
(``/_sim`` test surface), ``server`` (running it), ``cli``, ``samples``.
"""

from __future__ import annotations

from syncd.simulator.options import (
    FaultSettings,
    PurchaseOrder,
    SimulatorOptions,
)
from syncd.simulator.server import Simulator, serve

__all__ = [
    "FaultSettings",
    "PurchaseOrder",
    "Simulator",
    "SimulatorOptions",
    "serve",
]
