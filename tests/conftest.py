"""Fixtures shared by every suite: a folder tree and a simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    tree.inbox.mkdir()
    return tree


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorOptions(api_key=API_KEY, processing_seconds=0.2)) as sim:
        yield sim
