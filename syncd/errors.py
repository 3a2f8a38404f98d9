"""syncd's exceptions and process exit codes.

Lower-level errors (httpx, OSError, sqlite3) are mapped to these at the module
boundary that meets them, and chained with ``raise ... from exc``::

    SyncdError
    ├── ConfigError            the configuration is unusable (exit 78)
    ├── AuthError              the API refused the key (exit 69)
    ├── TransientError         waiting and trying again may heal it
    │   ├── RateLimited        the server asked us to slow down
    │   └── ConnectionLost     no answer: the request may or may not have acted
    └── PermanentError         this document cannot succeed as it is
        └── BadDocument        the local file is not an acceptable PDF

A worker that catches ``TransientError`` reschedules the document; one that
catches ``PermanentError`` sends it to ``failed/`` with ``reason`` and the
message.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses, chosen from sysexits.h so systemd units can react."""

    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    UNAVAILABLE = 69  # EX_UNAVAILABLE: the service refused our key
    SOFTWARE = 70
    TEMPFAIL = 75  # EX_TEMPFAIL: work is left, it resumes on the next start
    CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus uses this


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""

    exit_code = ExitCode.SOFTWARE


class ConfigError(SyncdError):
    """The configuration cannot be used; ``problems`` lists every finding.

    Each problem reads ``key.path: what is wrong``, so all of them can be shown
    at once and fixed in one edit.
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid configuration{where}:\n{lines}")


class AuthError(SyncdError):
    """The API refused the key (401) or forbade an action (403)."""

    exit_code = ExitCode.UNAVAILABLE


class TransientError(SyncdError):
    """A failure that may heal by waiting: 408, 429, 5xx, timeouts, I/O."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The server answered 429; ``retry_after`` holds its advice in seconds."""


class ConnectionLost(TransientError):
    """The request got no answer: timed out, refused, or cut off.

    Unlike an error answer, this leaves open whether the request took
    effect, which matters for a request that creates something.
    """


class PermanentError(SyncdError):
    """This document cannot succeed as it is; waiting will not help.

    ``reason`` is a short stable code written into ``*.error.json`` (for
    example ``not_pdf``, ``rejected``), the message is for a person.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BadDocument(PermanentError):
    """The local file is not an acceptable PDF (empty, corrupt, encrypted...)."""
