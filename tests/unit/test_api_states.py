"""The client's reading of the service's states, as the contract lays it down."""

from __future__ import annotations

import pytest

from syncd.api import RemoteFile


def _file(state: str, refunded: bool = False) -> RemoteFile:
    return RemoteFile.parse(
        {"id": "f1", "name": "a.pdf", "size": 1, "state": state, "refunded": refunded}
    )


@pytest.mark.parametrize(
    ("state", "refunded", "outcome"),
    [
        ("completed", False, "completed"),
        ("failed", True, "failed"),
        ("failed", False, "failed"),
        ("in_progress", True, "failed"),
        ("validation", False, "working"),
        ("in_progress", False, "working"),
        ("queued_for_human_review", False, "working"),
        ("", False, "working"),
    ],
)
def test_completed_is_success_failed_or_refunded_is_final_anything_else_waits(
    state: str, refunded: bool, outcome: str
) -> None:
    assert _file(state, refunded).outcome == outcome


def test_an_unknown_state_is_flagged_so_it_can_be_logged() -> None:
    assert not _file("queued_for_human_review").known_state
    assert _file("validation").known_state
