"""The systemd unit: consistent with the daemon, valid, and tightly sandboxed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from syncd.daemon import STOP_GRACE_SECONDS
from syncd.errors import ExitCode
from tests.service.helpers import ROOT

if TYPE_CHECKING:
    from pathlib import Path

UNIT = ROOT / "systemd" / "syncd.service"
SHIPPED_EXEC = "/opt/syncd/venv/bin/syncd"
MAX_EXPOSURE = 1.5

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (apt-get install systemd)",
)


def _settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit; keys may repeat."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_unit_matches_what_the_daemon_does() -> None:
    unit = _settings(UNIT.read_text())

    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == [f"{SHIPPED_EXEC} run -c /etc/syncd/config.yaml"]
    assert unit["RestartPreventExitStatus"] == [str(int(ExitCode.CONFIG))]
    assert float(unit["TimeoutStopSec"][0]) > STOP_GRACE_SECONDS + 10
    assert float(unit["WatchdogSec"][0]) >= 10
    credentials = {value.split(":")[0] for value in unit["LoadCredential"]}
    assert credentials == {"api-key", "webhook-secret"}


@needs_analyze
def test_the_unit_scores_at_most_1_5_in_systemd_analyze_security() -> None:
    result = _analyze("security", "--offline=true", str(UNIT))
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 252)")

    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE, result.stdout


@needs_analyze
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify also checks that ExecStart= exists, and /opt/syncd is only there
    # once installed. A copy pointing at this checkout's interpreter must
    # verify without a word; nothing else differs from the shipped unit.
    text = UNIT.read_text()
    assert text.count(f"ExecStart={SHIPPED_EXEC} ") == 1
    copy = tmp_path / "syncd.service"
    copy.write_text(text.replace(SHIPPED_EXEC, f"{sys.executable} -m syncd"))

    result = _analyze("verify", str(copy))

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@needs_analyze
def test_the_shipped_unit_fails_verify_only_for_a_missing_install() -> None:
    result = _analyze("verify", str(UNIT))

    complaints = [line for line in result.stderr.splitlines() if line.strip()]
    expected = f"syncd.service: Command {SHIPPED_EXEC} is not executable"
    assert all(line.startswith(expected) for line in complaints), complaints
