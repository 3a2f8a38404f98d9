"""How hard the fuzz tests try: a few seconds each in CI, much longer on demand.

``HYPOTHESIS_PROFILE=long pytest tests/fuzz`` runs the long profile. The
profiles are applied per test, not loaded globally, so the rest of the
suite keeps hypothesis's defaults.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
CI = settings(max_examples=40, stateful_step_count=30, **_COMMON)
LONG = settings(max_examples=5_000, stateful_step_count=100, **_COMMON)


def fuzz_settings() -> settings:
    """The profile named by ``HYPOTHESIS_PROFILE``: ``long``, else the CI one."""
    return LONG if os.environ.get("HYPOTHESIS_PROFILE") == "long" else CI
