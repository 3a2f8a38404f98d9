"""Logging setup: formats, levels, and redaction of secrets."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from syncd.logs import REDACTED, configure_logging, get_logger, register_secret

if TYPE_CHECKING:
    from collections.abc import Iterator


class TtyStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_format_writes_one_parseable_object_per_event(
    stream: io.StringIO,
) -> None:
    configure_logging("info", "json", stream)
    log = get_logger("syncd.uploader")

    log.info("document.uploaded", doc="a.pdf", remote_id="r-1", pages=3)
    log.warning("document.held", doc="b.pdf", reason="busy\nretry")

    first, second = lines(stream)
    assert list(first)[:3] == ["timestamp", "level", "event"]
    assert first["event"] == "document.uploaded"
    assert first["level"] == "info"
    assert first | {"timestamp": None} == {
        "timestamp": None,
        "level": "info",
        "event": "document.uploaded",
        "logger_name": "syncd.uploader",
        "doc": "a.pdf",
        "remote_id": "r-1",
        "pages": 3,
    }
    assert second["reason"] == "busy\nretry"
    assert len(stream.getvalue().splitlines()) == 2


def test_timestamps_are_iso_utc(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)

    get_logger().info("tick")

    (line,) = lines(stream)
    offset = datetime.fromisoformat(line["timestamp"]).utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_values_json_cannot_encode_are_written_as_text(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)

    get_logger().info("document.moved", to=Path("/srv/outbox/a.pdf"))

    assert lines(stream)[0]["to"] == "/srv/outbox/a.pdf"


def test_events_below_the_level_are_dropped(stream: io.StringIO) -> None:
    configure_logging("warning", "json", stream)
    log = get_logger()

    log.debug("noise")
    log.info("noise")
    log.warning("kept")
    log.error("kept")

    assert [line["event"] for line in lines(stream)] == ["kept", "kept"]


def test_level_names_are_case_insensitive(stream: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream)

    get_logger().debug("seen")

    assert lines(stream)[0]["level"] == "debug"


@pytest.mark.parametrize(
    ("level", "fmt"), [("verbose", "json"), ("info", "xml"), ("info", "JSON")]
)
def test_unknown_level_or_format_is_refused(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown log"):
        configure_logging(level, fmt, io.StringIO())


def test_calling_it_again_redirects_loggers_made_before(stream: io.StringIO) -> None:
    log = get_logger("early")
    configure_logging("info", "json", io.StringIO())

    configure_logging("info", "json", stream)
    log.info("after")

    assert lines(stream)[0]["event"] == "after"


def test_exceptions_are_logged_as_text_on_one_line(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)

    try:
        raise RuntimeError("disk full")
    except RuntimeError:
        get_logger().exception("document.failed", doc="a.pdf")

    (line,) = lines(stream)
    assert line["level"] == "error"
    assert "RuntimeError: disk full" in line["exception"]
    assert len(stream.getvalue().splitlines()) == 1


# Redaction by field name.


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "api_key",
        "API_KEY",
        "secret",
        "webhook_secret",
        "token",
        "access_token",
        "password",
        "db_password",
        "signature",
        "webhook_signature",
        "authorization",
        "x-api-key",
        "cookie",
    ],
)
def test_fields_named_like_secrets_are_redacted(stream: io.StringIO, name: str) -> None:
    configure_logging("info", "json", stream)

    get_logger().info("request.sent", **{name: "s3cr3t-value"})

    assert lines(stream)[0][name] == REDACTED


@pytest.mark.parametrize(
    "name",
    [
        "idempotency_key",
        "remote_id",
        "key_path",
        "key_file",
        "secret_file",
        "signature_scheme",
        "token_count",
        "doc",
    ],
)
def test_identifiers_that_merely_mention_a_key_are_kept(
    stream: io.StringIO, name: str
) -> None:
    configure_logging("info", "json", stream)

    get_logger().info("request.sent", **{name: "visible"})

    assert lines(stream)[0][name] == "visible"


def test_secret_names_are_redacted_inside_nested_values(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)

    get_logger().info(
        "request.sent",
        headers={"X-Api-Key": "abc-123", "Accept": "application/json"},
        attempts=[{"authorization": "Bearer abc"}, {"status": 500}],
    )

    (line,) = lines(stream)
    assert line["headers"] == {"X-Api-Key": REDACTED, "Accept": "application/json"}
    assert line["attempts"] == [{"authorization": REDACTED}, {"status": 500}]


def test_values_bound_to_a_logger_are_redacted_too(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)

    get_logger().bind(token="t-0000").info("bound")

    assert lines(stream)[0]["token"] == REDACTED


# Redaction of registered values.


def test_registered_secret_is_cut_from_message_fields_and_nesting(
    stream: io.StringIO,
) -> None:
    secret = "reg-secret-7f3a91c2"
    register_secret(secret)
    configure_logging("info", "json", stream)

    get_logger().info(
        f"calling with {secret}",
        url=f"https://api.example.com/?k={secret}",
        nested={"deep": [f"x{secret}y", ("t", secret)]},
        error=ValueError(f"bad key {secret}"),
    )

    text = stream.getvalue()
    assert secret not in text
    (line,) = lines(stream)
    assert line["event"] == f"calling with {REDACTED}"
    assert line["url"] == f"https://api.example.com/?k={REDACTED}"
    assert line["nested"] == {"deep": [f"x{REDACTED}y", ["t", REDACTED]]}
    assert line["error"] == f"bad key {REDACTED}"


def test_registered_secret_is_cut_from_exception_text(stream: io.StringIO) -> None:
    secret = "reg-secret-exc-55d1"
    register_secret(secret)
    configure_logging("info", "json", stream)

    try:
        raise PermissionError(f"401 for key {secret}")
    except PermissionError:
        get_logger().exception("api.refused")

    assert secret not in stream.getvalue()
    assert f"401 for key {REDACTED}" in lines(stream)[0]["exception"]


def test_registered_secret_is_cut_from_format_arguments(stream: io.StringIO) -> None:
    secret = "reg-secret-args-a0b1"
    register_secret(secret)
    configure_logging("info", "json", stream)

    get_logger().info("key is %s", secret)

    assert lines(stream)[0]["event"] == f"key is {REDACTED}"


def test_a_secret_containing_another_is_cut_whole(stream: io.StringIO) -> None:
    register_secret("reg-inner-1234")
    register_secret("reg-outer-reg-inner-1234-xyz")
    configure_logging("info", "json", stream)

    get_logger().info("x", value="[reg-outer-reg-inner-1234-xyz]")

    assert lines(stream)[0]["value"] == f"[{REDACTED}]"


def test_secrets_shorter_than_four_characters_are_ignored(
    stream: io.StringIO,
) -> None:
    register_secret("abc")
    configure_logging("info", "json", stream)

    get_logger().info("abc abc")

    assert lines(stream)[0]["event"] == "abc abc"


def test_cyclic_values_are_logged_without_recursing_forever(
    stream: io.StringIO,
) -> None:
    configure_logging("info", "json", stream)
    loop: list[object] = []
    loop.append(loop)

    get_logger().info("odd", value=loop)

    assert lines(stream)[0]["event"] == "odd"


# journald.


@pytest.mark.parametrize(
    ("method", "priority"),
    [("debug", 7), ("info", 6), ("warning", 4), ("error", 3), ("critical", 2)],
)
def test_journal_lines_carry_the_syslog_priority_prefix_and_field(
    stream: io.StringIO, method: str, priority: int
) -> None:
    configure_logging("debug", "journal", stream)

    getattr(get_logger(), method)("event.name", doc="a.pdf")

    line = stream.getvalue()
    assert line.startswith(f"<{priority}>{{")
    body = json.loads(line[len(f"<{priority}>") :])
    assert body["PRIORITY"] == priority
    assert body["event"] == "event.name"


def test_auto_picks_journal_when_systemd_connected_the_stream(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    configure_logging("info", "auto", stream)

    get_logger().warning("held")

    assert stream.getvalue().startswith("<4>{")


def test_auto_picks_json_lines_for_a_pipe(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_logging("info", "auto", stream)

    get_logger().info("started")

    assert lines(stream)[0]["event"] == "started"


def test_auto_picks_the_console_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    terminal = TtyStream()
    configure_logging("info", "auto", terminal)

    get_logger().info("started", doc="a.pdf")

    text = terminal.getvalue()
    assert "started" in text
    assert "a.pdf" in text
    assert not text.startswith(("{", "<"))


# The console.


def test_console_format_writes_readable_lines_and_tracebacks(
    stream: io.StringIO,
) -> None:
    secret = "reg-secret-console-9e2f"
    register_secret(secret)
    configure_logging("info", "console", stream)
    log = get_logger("syncd.cli")

    log.info("document.uploaded", doc="a.pdf", api_key="k-1")
    try:
        raise OSError(f"cannot reach {secret}")
    except OSError:
        log.exception("api.unreachable")

    text = stream.getvalue()
    assert "document.uploaded" in text
    assert "doc=a.pdf" in text
    assert f"api_key={REDACTED}" in text
    assert f"OSError: cannot reach {REDACTED}" in text
    assert secret not in text
    assert "\x1b[" not in text


def test_console_at_a_terminal_uses_colours() -> None:
    terminal = TtyStream()
    configure_logging("info", "console", terminal)

    get_logger().warning("held", doc="a.pdf")

    assert "\x1b[" in terminal.getvalue()
