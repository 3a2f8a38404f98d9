"""Structured logging: events with fields, for a terminal, JSON or journald.

Code logs events, not sentences: ``log.info("document.uploaded", doc=...,
remote_id=...)``. ``configure_logging`` picks how they are written:

- ``console``: aligned, coloured text for a person at a terminal;
- ``json``: one JSON object per line, for log shippers;
- ``journal``: the JSON line behind the ``<N>`` priority prefix that journald
  reads from a service's stdout and stderr (sd-daemon(3)), so ``journalctl
  -p warning`` works; the object also carries the priority as ``PRIORITY``;
- ``auto``: ``console`` at a terminal, ``journal`` when systemd connected the
  stream to the journal (it sets ``JOURNAL_STREAM``), ``json`` otherwise.

Every event passes a redaction processor, whatever the caller hands it:

1. A field whose name says it holds a secret is replaced by ``[redacted]``, at
   any depth. Names are compared in lower case with ``-`` read as ``_``, so
   the header ``X-Api-Key`` counts. A name is secret when it is one of
   ``_SECRET_NAMES`` (``key``, ``token``, ``password``, ``authorization``...)
   or ends in one of ``_SECRET_SUFFIXES`` (``webhook_secret``,
   ``access_token``...). The rules look at whole words on purpose: a bare
   ``_key`` suffix would hide ``idempotency_key`` and ``sort_key``, which are
   identifiers that a reader of the logs needs, and ``key_file`` names a path,
   not a secret.
2. Values registered with ``register_secret`` (the API key, the webhook
   secret) are cut out of every string: the message, nested fields, exception
   text. Only the exact text is found, not an encoded form of it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO, cast

import structlog

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

REDACTED = "[redacted]"

_SECRET_NAMES = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "x_api_key",
        "secret",
        "client_secret",
        "webhook_secret",
        "token",
        "password",
        "passwd",
        "passphrase",
        "signature",
        "authorization",
        "cookie",
        "set_cookie",
        "credential",
        "credentials",
        "private_key",
    }
)
_SECRET_SUFFIXES = (
    "_secret",
    "_token",
    "_password",
    "_passphrase",
    "_api_key",
    "_private_key",
    "_signature",
    "_authorization",
    "_credentials",
)

# Shorter values would cut ordinary words out of every line.
_MIN_SECRET_LENGTH = 4
# Containers nested deeper than this (or cyclic) are logged as their text.
_MAX_DEPTH = 16
_CONTAINERS = (dict, list, tuple, set, frozenset)

_LEVELS = ("debug", "info", "warning", "error", "critical")
# syslog priorities, as journald reads them from a "<N>" line prefix.
_PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
_FORMATS = ("auto", "json", "console", "journal")
# The first fields of a JSON line, so that a person can read it too.
_LEADING_FIELDS = ("timestamp", "level", "event")

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
# Rebuilt under the lock, read without it: replacing the reference is atomic.
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Cut ``value`` out of every log line from now on.

    Call it with each secret as soon as it is known, before it can reach an
    error message. Values shorter than 4 characters are ignored.
    """
    global _secret_pattern

    if len(value) < _MIN_SECRET_LENGTH:
        return

    with _secrets_lock:
        _secrets.add(value)
        # Longest first, so a secret that contains another goes as a whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def _is_secret_name(name: str) -> bool:
    normal = name.lower().replace("-", "_")

    return normal in _SECRET_NAMES or normal.endswith(_SECRET_SUFFIXES)


def _scrub(value: object, pattern: re.Pattern[str] | None, depth: int = 0) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value) if pattern else value
    if value is None or isinstance(value, bool | int | float):
        return value

    if isinstance(value, _CONTAINERS) and depth >= _MAX_DEPTH:
        # A cyclic or absurdly deep value becomes its text: repr() marks the
        # cycles, where the JSON encoder would raise in the caller's face.
        return _scrub(repr(value), pattern)
    if isinstance(value, dict):
        return {
            _json_key(key): REDACTED
            if isinstance(key, str) and _is_secret_name(key)
            else _scrub(item, pattern, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub(item, pattern, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items

    if pattern is None:
        return value
    # Other objects (exceptions, paths...) are rendered through str() or
    # repr(); look at both.
    for text in (str(value), repr(value)):
        if pattern.search(text):
            return pattern.sub(REDACTED, text)

    return value


def _json_key(key: object) -> object:
    # JSON objects take only these as keys; json.dumps raises on the others.
    if key is None or isinstance(key, str | int | float | bool):
        return key

    return str(key)


def _redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: hide secret-named fields and registered secret values."""
    pattern = _secret_pattern

    return {
        key: REDACTED if _is_secret_name(key) else _scrub(value, pattern)
        for key, value in event_dict.items()
    }


def _to_json(event_dict: EventDict) -> str:
    leading = {key: event_dict[key] for key in _LEADING_FIELDS if key in event_dict}
    ordered = leading | dict(event_dict)
    # ASCII escapes keep file names with undecodable bytes (surrogates) from
    # failing the write to a UTF-8 stream.
    return json.dumps(ordered, default=str, ensure_ascii=True)


def _render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    return _to_json(event_dict)


def _render_journal(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    priority = _PRIORITIES.get(str(event_dict.get("level")), _PRIORITIES["info"])
    event_dict["PRIORITY"] = priority

    return f"<{priority}>{_to_json(event_dict)}"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None
) -> None:
    """Set where and how log events are written; calling it again replaces it.

    Args:
        level: The lowest level written: debug, info, warning, error or
            critical.
        fmt: ``console``, ``json``, ``journal`` or ``auto`` (see the module
            docstring for what ``auto`` picks).
        stream: Where lines go; standard error when omitted.

    Raises:
        ValueError: ``level`` or ``fmt`` is not one of the names above.
    """
    level = level.lower()
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {_LEVELS}")
    if fmt not in _FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {_FORMATS}")

    out = sys.stderr if stream is None else stream
    if fmt == "auto":
        if _is_tty(out):
            fmt = "console"
        else:
            fmt = "journal" if os.environ.get("JOURNAL_STREAM") else "json"

    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=_is_tty(out))
    elif fmt == "journal":
        renderer = _render_journal
    else:
        renderer = _render_json

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            # Tracebacks become text before redaction, so a secret inside an
            # exception message is cut too; the console prints that text.
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Module-level loggers are created at import, before configuration;
        # without the cache each one follows a later reconfiguration.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """Return a logger; ``name`` (usually ``__name__``) goes in ``logger_name``.

    It may be created at import time: it uses whatever configuration is current
    when it logs.
    """
    # Not "logger": structlog.get_logger() takes that name for itself.
    initial = {"logger_name": name} if name else {}

    return cast("FilteringBoundLogger", structlog.get_logger(**initial))
