"""Fixtures for the simulator's tests: running simulators, clients, a receiver.

Every test talks real HTTP over loopback to a ``Simulator`` running in its
background thread. Waits are conditions polled against a deadline.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from syncd.simulator import Simulator, SimulatorOptions
from syncd.simulator.samples import make_pdf
from tests.simulator.sim_support import KEY, Api, Receiver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Simulator]]:
    """Return a function that starts a simulator; all are stopped afterwards."""
    running: list[Simulator] = []

    def start(**changes: Any) -> Simulator:
        settings: dict[str, Any] = {"api_key": KEY, "processing_seconds": 0.2}
        settings.update(changes)
        sim = Simulator(SimulatorOptions(**settings)).start()
        running.append(sim)
        return sim

    yield start
    for sim in running:
        sim.stop()


@pytest.fixture
def start_api(start_sim: Callable[..., Simulator]) -> Iterator[Callable[..., Api]]:
    """Return a function that starts a simulator and gives its ``Api``."""
    clients: list[Api] = []

    def start(**changes: Any) -> Api:
        api = Api(start_sim(**changes))
        clients.append(api)
        return api

    yield start
    for api in clients:
        api.close()


@pytest.fixture
def api(start_api: Callable[..., Api]) -> Api:
    return start_api()


@pytest.fixture
def pdf() -> bytes:
    return make_pdf(3)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    receivers: list[Receiver] = []

    def start(statuses: list[int] | None = None) -> Receiver:
        receiver = Receiver(statuses or [])
        receiver.thread.start()
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        receiver.server.shutdown()
        receiver.server.server_close()
        with contextlib.suppress(RuntimeError):
            receiver.thread.join(5)
