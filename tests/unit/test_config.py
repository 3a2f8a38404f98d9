"""The configuration loader: schema, environment, secrets and its messages."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.config import (
    ApiSettings,
    FolderSettings,
    HttpSettings,
    LoggingSettings,
    PollSettings,
    Settings,
    UploadSettings,
    WatchSettings,
    WebhookSettings,
    load_settings,
    parse_settings,
)
from syncd.errors import ConfigError, ExitCode

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
API_KEY = "sk-test-4f0c2a9e7b1d"
WEBHOOK_SECRET = "whsec-test-9d8c7b6a5f4e"
BASE = Path("/etc/syncd")


def minimal() -> dict[str, Any]:
    """The smallest valid configuration, for a test to change one thing in."""
    return {
        "api": {"base_url": "https://api.example.com/v1", "key": API_KEY},
        "folders": {
            "inbox": "/srv/a11y/inbox",
            "outbox": "/srv/a11y/outbox",
            "failed": "/srv/a11y/failed",
        },
        "state_dir": "/var/lib/syncd",
    }


def with_value(path: str, value: object) -> dict[str, Any]:
    """``minimal()`` with the dotted ``path`` set to ``value``."""
    data = minimal()
    *parents, last = path.split(".")
    node = data
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value

    return data


def parse(data: object, environ: dict[str, str] | None = None) -> Settings:
    return parse_settings(data, BASE, environ or {})


def problems(data: object, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(data, environ)

    return raised.value.problems


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")

    return path


# Defaults, the example, and the happy path.


def test_minimal_config_takes_every_other_value_from_the_dataclass_defaults() -> None:
    loaded = parse(minimal())

    assert loaded.api == ApiSettings(base_url="https://api.example.com/v1", key=API_KEY)
    assert loaded.folders == FolderSettings(
        inbox=Path("/srv/a11y/inbox"),
        outbox=Path("/srv/a11y/outbox"),
        failed=Path("/srv/a11y/failed"),
    )
    assert loaded.state_dir == Path("/var/lib/syncd")
    assert loaded.upload == UploadSettings()
    assert loaded.routes == ()
    assert loaded.watch == WatchSettings()
    assert loaded.poll == PollSettings()
    assert loaded.http == HttpSettings()
    assert loaded.webhook == WebhookSettings()
    assert loaded.logging == LoggingSettings()
    assert loaded.source is None


def test_example_config_loads_when_the_api_key_is_in_the_environment() -> None:
    loaded = load_settings(EXAMPLE, environ={"SYNCD_API_KEY": API_KEY})

    assert loaded.api.key == API_KEY
    assert loaded.source == EXAMPLE
    assert loaded.folders.archive == Path("/srv/accessibility/archive")
    assert loaded.routes[0].folder == Path("finance")


def test_example_config_names_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    sections = {
        "api": ApiSettings,
        "folders": FolderSettings,
        "upload": UploadSettings,
        "watch": WatchSettings,
        "poll": PollSettings,
        "http": HttpSettings,
        "webhook": WebhookSettings,
        "logging": LoggingSettings,
    }

    for section, cls in sections.items():
        assert f"\n{section}:" in text
        for field in dataclasses.fields(cls):
            assert f"  {field.name}:" in text, f"{section}.{field.name}"
    for extra in ("key_file:", "secret_file:", "state_dir:", "routes:", "folder:"):
        assert extra in text


def test_load_settings_records_the_file_as_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"api: {{base_url: 'https://a.example', key: {API_KEY}}}\n"
        "folders: {inbox: in, outbox: out, failed: failed}\n"
        "state_dir: state\n",
    )

    assert load_settings(path, environ={}).source == path


def test_full_configuration_is_read_into_every_field() -> None:
    data = minimal()
    data["api"] |= {"timeout_seconds": 12.5, "max_requests_per_second": 3}
    data["folders"] |= {"archive": "/srv/a11y/archive", "on_conflict": "overwrite"}
    data["upload"] = {
        "purchase_order": "PO-1",
        "tags": ["t1", "t2"],
        "comment": "from the scanner",
        "exclude_watermark": True,
        "notify_email": "ops@example.com",
        "concurrency": 2,
        "max_file_mb": 50,
        "duplicates": "upload",
    }
    data["watch"] = {
        "mode": "polling",
        "settle_seconds": 0,
        "give_up_after_seconds": 60,
        "rescan_seconds": 30,
        "polling_interval_seconds": 2.5,
        "ignore": ["*.tmp", "~$*"],
    }
    data["poll"] = {"interval_seconds": 5, "max_interval_seconds": 5}
    data["http"] = {
        "listen": "[::1]:0",
        "tls_cert_file": "tls/cert.pem",
        "tls_key_file": "tls/key.pem",
        "max_body_bytes": 4096,
    }
    data["webhook"] = {
        "enabled": True,
        "path": "/hooks/ad",
        "secret": WEBHOOK_SECRET,
        "signature": "standard-webhooks",
        "public_url": "https://syncd.example.com/hooks/ad",
        "register": True,
    }
    data["logging"] = {"level": "DEBUG", "format": "journal"}

    loaded = parse(data)

    assert loaded.api.timeout_seconds == 12.5
    assert loaded.api.max_requests_per_second == 3
    assert loaded.folders.archive == Path("/srv/a11y/archive")
    assert loaded.folders.on_conflict == "overwrite"
    assert loaded.upload == UploadSettings(
        purchase_order="PO-1",
        tags=("t1", "t2"),
        comment="from the scanner",
        exclude_watermark=True,
        notify_email="ops@example.com",
        concurrency=2,
        max_file_mb=50,
        duplicates="upload",
    )
    assert loaded.watch == WatchSettings(
        mode="polling",
        settle_seconds=0,
        give_up_after_seconds=60,
        rescan_seconds=30,
        polling_interval_seconds=2.5,
        ignore=("*.tmp", "~$*"),
    )
    assert loaded.poll == PollSettings(interval_seconds=5, max_interval_seconds=5)
    assert loaded.http == HttpSettings(
        listen="[::1]:0",
        tls_cert_file=BASE / "tls/cert.pem",
        tls_key_file=BASE / "tls/key.pem",
        max_body_bytes=4096,
    )
    assert loaded.webhook.secret == WEBHOOK_SECRET
    assert loaded.webhook.signature == "standard-webhooks"
    assert loaded.webhook.register is True
    assert loaded.logging == LoggingSettings(level="debug", format="journal")


def test_empty_sections_mean_defaults() -> None:
    data = minimal() | {"upload": None, "watch": None, "routes": None}

    loaded = parse(data)

    assert loaded.upload == UploadSettings()
    assert loaded.routes == ()


# The environment.


def test_variables_are_expanded_in_every_string_value() -> None:
    data = minimal()
    data["api"]["key"] = "${KEY}"
    data["api"]["base_url"] = "https://${HOST}/v1"
    data["folders"]["inbox"] = "${ROOT}/inbox"
    data["upload"] = {"purchase_order": "PO-${YEAR}-014", "tags": ["${TAG}"]}
    environ = {
        "KEY": API_KEY,
        "HOST": "api.example.com",
        "ROOT": "/data",
        "YEAR": "2026",
        "TAG": "tag-7",
    }

    loaded = parse(data, environ)

    assert loaded.api.key == API_KEY
    assert loaded.api.base_url == "https://api.example.com/v1"
    assert loaded.folders.inbox == Path("/data/inbox")
    assert loaded.upload.purchase_order == "PO-2026-014"
    assert loaded.upload.tags == ("tag-7",)


def test_default_applies_when_the_variable_is_unset_or_empty() -> None:
    data = with_value("upload.purchase_order", "${PO:-PO-DEFAULT}")

    assert parse(data).upload.purchase_order == "PO-DEFAULT"
    assert parse(data, {"PO": ""}).upload.purchase_order == "PO-DEFAULT"
    assert parse(data, {"PO": "PO-9"}).upload.purchase_order == "PO-9"


def test_empty_default_leaves_an_optional_value_unset() -> None:
    data = with_value("upload.purchase_order", "${PO:-}")

    assert parse(data).upload.purchase_order is None


def test_unset_variable_is_reported_at_its_key_path() -> None:
    data = with_value("api.key", "${SYNCD_API_KEY}")

    assert problems(data) == ["api.key: environment variable SYNCD_API_KEY is not set"]


def test_every_unset_variable_of_a_value_is_named() -> None:
    data = with_value("api.base_url", "https://${HOST}:${PORT}/")

    assert problems(data) == [
        "api.base_url: environment variables HOST, PORT are not set"
    ]


def test_unset_variable_in_a_list_item_names_the_item() -> None:
    data = with_value("upload.tags", ["ok", "${TAG}"])

    assert problems(data) == ["upload.tags[1]: environment variable TAG is not set"]


def test_double_dollar_keeps_a_literal_reference() -> None:
    data = with_value("upload.comment", "costs $${AMOUNT}")

    assert parse(data).upload.comment == "costs ${AMOUNT}"


def test_variables_may_supply_numbers_and_flags() -> None:
    data = minimal()
    data["upload"] = {"concurrency": "${WORKERS}", "exclude_watermark": "${NO_WM}"}
    data["api"]["timeout_seconds"] = "${TIMEOUT}"

    loaded = parse(data, {"WORKERS": "8", "NO_WM": "yes", "TIMEOUT": "2.5"})

    assert loaded.upload.concurrency == 8
    assert loaded.upload.exclude_watermark is True
    assert loaded.api.timeout_seconds == 2.5


def test_variable_that_is_not_a_number_is_reported_with_its_text() -> None:
    data = with_value("upload.concurrency", "${WORKERS}")

    assert problems(data, {"WORKERS": "many"}) == [
        "upload.concurrency: expected a whole number, got 'many'"
    ]


# Unknown keys and wrong types.


def test_unknown_key_suggests_the_closest_known_one() -> None:
    data = with_value("upload.concurency", 4)

    assert problems(data) == [
        "upload.concurency: unknown key (did you mean 'concurrency'?)"
    ]


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    data = with_value("poll.zzz", 1)

    assert problems(data) == [
        "poll.zzz: unknown key (expected one of: interval_seconds, "
        "max_interval_seconds)"
    ]


def test_unknown_top_level_section_is_reported() -> None:
    data = minimal() | {"uplaod": {}}

    assert problems(data) == ["uplaod: unknown key (did you mean 'upload'?)"]


def test_source_is_not_a_configurable_key() -> None:
    data = minimal() | {"source": "/tmp/x"}

    assert problems(data)[0].startswith("source: unknown key")


def test_non_string_key_is_unknown() -> None:
    data = with_value("upload", {1: "x"})

    assert problems(data)[0].startswith("upload.1: unknown key")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "upload.concurrency",
            "four",
            "expected a whole number, got 'four' (a quoted string; remove the quotes)",
        ),
        ("upload.concurrency", 2.5, "expected a whole number, got 2.5"),
        ("upload.concurrency", True, "expected a whole number, got true"),
        ("api.timeout_seconds", [1], "expected a number, got a list"),
        ("api.timeout_seconds", float("inf"), "expected a finite number, got inf"),
        (
            "upload.exclude_watermark",
            "true",
            "expected true or false, got 'true' (a quoted string; remove the quotes)",
        ),
        ("upload.exclude_watermark", 1, "expected true or false, got 1"),
        ("upload.purchase_order", 2026, "expected a string, got 2026; quote it"),
        ("upload.tags", "finance", "expected a list of strings, got 'finance'"),
        ("watch.ignore", {"a": 1}, "expected a list of strings, got a mapping"),
        ("upload", ["tags"], "expected a mapping, got a list"),
        ("api.base_url", None, "required"),
        ("folders.outbox", None, "required"),
    ],
)
def test_wrong_type_names_the_expected_type_and_the_value(
    path: str, value: object, message: str
) -> None:
    assert problems(with_value(path, value)) == [f"{path}: {message}"]


def test_list_items_are_checked_one_by_one() -> None:
    data = with_value("upload.tags", ["ok", 7, None, ""])

    assert problems(data) == [
        "upload.tags[1]: expected a string, got 7; quote it",
        "upload.tags[2]: expected a string, got null",
        "upload.tags[3]: must not be empty",
    ]


def test_a_long_list_of_bad_items_is_summarised() -> None:
    data = with_value("watch.ignore", list(range(8)))

    found = problems(data)

    assert len(found) == 6
    assert found[-1] == "watch.ignore: 3 more items are wrong"


def test_huge_numbers_are_reported_without_crashing() -> None:
    data = with_value("api.timeout_seconds", 10**400)
    data["upload"] = {"concurrency": -(10**400)}

    assert problems(data) == [
        "api.timeout_seconds: is too large",
        "upload.concurrency: must be at least 1, got a very large number",
    ]


def test_long_values_are_shortened_in_messages() -> None:
    data = with_value("watch.mode", "x" * 500)

    (message,) = problems(data)

    assert len(message) < 200


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("upload.concurrency", 0, "must be at least 1, got 0"),
        ("upload.max_file_mb", -5, "must be at least 1, got -5"),
        ("api.timeout_seconds", 0, "must be greater than 0, got 0"),
        ("api.max_requests_per_second", -1, "must be at least 0, got -1"),
        ("watch.settle_seconds", -1, "must be at least 0, got -1"),
        ("watch.rescan_seconds", 0, "must be greater than 0, got 0"),
        ("watch.polling_interval_seconds", -0.5, "must be greater than 0, got -0.5"),
        ("poll.interval_seconds", 0, "must be greater than 0, got 0"),
        ("http.max_body_bytes", 0, "must be at least 1, got 0"),
    ],
)
def test_numbers_must_be_positive_where_zero_makes_no_sense(
    path: str, value: object, message: str
) -> None:
    assert problems(with_value(path, value)) == [f"{path}: {message}"]


def test_zero_requests_per_second_means_unlimited() -> None:
    loaded = parse(with_value("api.max_requests_per_second", 0))

    assert loaded.api.max_requests_per_second is None


def test_null_requests_per_second_means_unlimited() -> None:
    loaded = parse(with_value("api.max_requests_per_second", None))

    assert loaded.api.max_requests_per_second is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "folders.on_conflict",
            "skip",
            "must be one of 'rename', 'overwrite', got 'skip'",
        ),
        (
            "upload.duplicates",
            "reuse ",
            "must be one of 'reuse', 'upload', got 'reuse ' (did you mean 'reuse'?)",
        ),
        (
            "watch.mode",
            "inotify",
            "must be one of 'auto', 'native', 'polling', got 'inotify'",
        ),
        (
            "webhook.signature",
            "hmac-sha1",
            "must be one of 'hmac-sha256', "
            "'standard-webhooks', got 'hmac-sha1' (did you mean 'hmac-sha256'?)",
        ),
        (
            "logging.level",
            "verbose",
            "must be one of 'debug', 'info', 'warning', 'error', got 'verbose'",
        ),
        (
            "logging.format",
            "text",
            "must be one of 'auto', 'json', 'console', 'journal', got 'text'",
        ),
    ],
)
def test_choices_list_the_allowed_values(path: str, value: str, message: str) -> None:
    assert problems(with_value(path, value)) == [f"{path}: {message}"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "api.example.com",
            "expected an http or https URL like "
            "https://example.com/, got 'api.example.com'",
        ),
        (
            "ftp://api.example.com",
            "expected an http or https URL like "
            "https://example.com/, got 'ftp://api.example.com'",
        ),
        (
            "https://",
            "expected an http or https URL like https://example.com/, got 'https://'",
        ),
        (
            "https://api.example.com:99999/",
            "is not a valid URL: 'https://api.example.com:99999/'",
        ),
    ],
)
def test_base_url_must_be_an_http_url(value: str, message: str) -> None:
    assert problems(with_value("api.base_url", value)) == [f"api.base_url: {message}"]


@pytest.mark.parametrize("value", ["ops", "ops@", "ops@example", "a b@example.com"])
def test_notify_email_must_look_like_an_email_address(value: str) -> None:
    assert problems(with_value("upload.notify_email", value)) == [
        f"upload.notify_email: expected an email address, got {value!r}"
    ]


# All at once.


def test_every_problem_is_reported_at_once() -> None:
    data = minimal()
    del data["state_dir"]
    data["upload"] = {"concurency": 4, "max_file_mb": 0}
    data["watch"] = {"mode": "fast"}
    data["api"]["key"] = "${SYNCD_API_KEY}"

    with pytest.raises(ConfigError) as raised:
        parse_settings(data, BASE, {}, source=BASE / "config.yaml")

    assert raised.value.problems == [
        "api.key: environment variable SYNCD_API_KEY is not set",
        "state_dir: required",
        "upload.concurency: unknown key (did you mean 'concurrency'?)",
        "upload.max_file_mb: must be at least 1, got 0",
        "watch.mode: must be one of 'auto', 'native', 'polling', got 'fast'",
    ]
    assert raised.value.source == "/etc/syncd/config.yaml"
    assert raised.value.exit_code == ExitCode.CONFIG
    assert "upload.concurency: unknown key" in str(raised.value)


def test_a_missing_section_reports_its_required_keys() -> None:
    data = minimal()
    del data["folders"]

    assert problems(data) == [
        "folders.inbox: required",
        "folders.outbox: required",
        "folders.failed: required",
    ]


def test_a_section_that_is_not_a_mapping_is_one_problem() -> None:
    data = minimal() | {"folders": ["inbox"], "api": "https://a.example"}

    assert problems(data) == [
        "api: expected a mapping, got 'https://a.example'",
        "folders: expected a mapping, got a list",
    ]


# Paths.


def test_relative_paths_resolve_against_the_config_files_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-key").write_text(API_KEY + "\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
api: {base_url: "https://a.example", key_file: secrets/api-key}
folders: {inbox: data/inbox, outbox: ./data/outbox, failed: ../failed}
state_dir: state
http: {tls_cert_file: tls/cert.pem, tls_key_file: /abs/key.pem}
""",
    )

    loaded = load_settings(path, environ={})

    assert loaded.api.key == API_KEY
    assert loaded.folders.inbox == tmp_path / "data" / "inbox"
    assert loaded.folders.outbox == tmp_path / "data" / "outbox"
    assert loaded.folders.failed == tmp_path.parent / "failed"
    assert loaded.state_dir == tmp_path / "state"
    assert loaded.http.tls_cert_file == tmp_path / "tls" / "cert.pem"
    assert loaded.http.tls_key_file == Path("/abs/key.pem")


def test_parse_settings_resolves_relative_paths_against_base_dir() -> None:
    data = with_value("folders.archive", "archive/../old")

    assert parse(data).folders.archive == BASE / "old"


def test_home_shorthand_is_refused_rather_than_resolved_oddly() -> None:
    assert problems(with_value("folders.outbox", "~/outbox")) == [
        "folders.outbox: '~/outbox': '~' is not expanded; write the full path "
        "or ${HOME}"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "must not be empty"), ("a\0b", "must not contain a NUL character")],
)
def test_unusable_path_strings_are_refused(value: str, message: str) -> None:
    assert problems(with_value("state_dir", value)) == [f"state_dir: {message}"]


# Secrets.


def test_key_file_supplies_the_key_without_its_trailing_newline(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(f"{API_KEY}\n", encoding="utf-8")
    data = minimal()
    data["api"] = {"base_url": "https://a.example", "key_file": str(key_file)}

    assert parse(data).api.key == API_KEY


def test_unreadable_key_file_is_reported_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    data = minimal()
    data["api"] = {"base_url": "https://a.example", "key_file": str(missing)}

    assert problems(data) == [
        f"api.key_file: cannot read {missing}: No such file or directory"
    ]


def test_empty_key_file_is_reported(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("\n", encoding="utf-8")
    data = minimal()
    data["api"] = {"base_url": "https://a.example", "key_file": str(key_file)}

    assert problems(data) == [f"api.key_file: {key_file} is empty"]


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_bytes(b"k" * 70_000)
    data = minimal()
    data["api"] = {"base_url": "https://a.example", "key_file": str(key_file)}

    assert problems(data) == [
        f"api.key_file: {key_file} is larger than 64 KiB; is it the right file?"
    ]


def test_systemd_credentials_supply_the_api_key_and_webhook_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "api-key").write_text(API_KEY, encoding="utf-8")
    (tmp_path / "webhook-secret").write_text(WEBHOOK_SECRET + "\n", encoding="utf-8")
    data = minimal()
    del data["api"]["key"]
    data["webhook"] = {"enabled": True}

    loaded = parse(data, {"CREDENTIALS_DIRECTORY": str(tmp_path)})

    assert loaded.api.key == API_KEY
    assert loaded.webhook.secret == WEBHOOK_SECRET


def test_a_value_in_the_config_wins_over_a_credential(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("from-credential", encoding="utf-8")

    loaded = parse(minimal(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})

    assert loaded.api.key == API_KEY


def test_unreadable_credential_is_reported_at_the_secret(tmp_path: Path) -> None:
    (tmp_path / "api-key").mkdir()
    data = minimal()
    del data["api"]["key"]

    assert problems(data, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == [
        f'api.key: systemd credential "api-key": cannot read {tmp_path / "api-key"}: '
        "Is a directory"
    ]


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY, encoding="utf-8")
    data = with_value("api.key_file", str(key_file))

    assert problems(data) == ["api.key: set either api.key or api.key_file, not both"]


def test_webhook_secret_and_secret_file_together_are_refused(tmp_path: Path) -> None:
    data = minimal()
    data["webhook"] = {"secret": WEBHOOK_SECRET, "secret_file": "secret"}

    assert problems(data) == [
        "webhook.secret: set either webhook.secret or webhook.secret_file, not both"
    ]


def test_missing_api_key_names_the_three_ways_to_give_it() -> None:
    data = minimal()
    del data["api"]["key"]

    assert problems(data) == [
        "api.key: required (set api.key, api.key_file, or the systemd credential "
        '"api-key")'
    ]


def test_empty_api_key_counts_as_missing() -> None:
    data = with_value("api.key", "${SYNCD_API_KEY:-}")

    assert problems(data)[0].startswith("api.key: required")


def test_secret_of_the_wrong_type_is_reported_without_its_value() -> None:
    data = with_value("api.key", 918273645546372819)

    assert problems(data) == ["api.key: expected a string, got a number"]


def test_secrets_appear_in_no_message_and_no_repr(tmp_path: Path) -> None:
    key_file = tmp_path / "webhook-secret"
    key_file.write_text(WEBHOOK_SECRET, encoding="utf-8")
    data = with_value("webhook.secret_file", str(key_file))
    data["webhook"]["enabled"] = True

    loaded = parse(data)
    broken = copy.deepcopy(data)
    broken["webhook"]["secret"] = WEBHOOK_SECRET
    broken["api"]["base_url"] = "nowhere"
    broken["http"] = {"listen": None}
    with pytest.raises(ConfigError) as raised:
        parse(broken)

    shown = [repr(loaded), str(loaded), str(raised.value), repr(raised.value)]
    for text in shown:
        assert API_KEY not in text
        assert WEBHOOK_SECRET not in text
    assert loaded.webhook.secret == WEBHOOK_SECRET


def test_yaml_error_does_not_quote_the_line_holding_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, f"api:\n  key: {API_KEY}\n  base_url: [\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert API_KEY not in str(raised.value)


# Folders that overlap.


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("folders.outbox", "/srv/a11y/inbox/outbox"),
        ("folders.archive", "/srv/a11y/inbox/archive"),
        ("folders.failed", "/srv/a11y/inbox/sub/failed"),
        ("state_dir", "/srv/a11y/inbox/.state"),
    ],
)
def test_nothing_may_live_inside_the_inbox(path: str, value: str) -> None:
    assert problems(with_value(path, value)) == [
        f"{path}: must not be inside folders.inbox (/srv/a11y/inbox), or syncd "
        "would pick up its own files"
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("folders.outbox", "/srv/a11y"),
        ("folders.archive", "/srv"),
        ("folders.failed", "/"),
        ("state_dir", "/srv/a11y"),
    ],
)
def test_the_inbox_may_not_live_inside_another_folder(path: str, value: str) -> None:
    assert problems(with_value(path, value)) == [
        f"folders.inbox: must not be inside {path} ({value})"
    ]


def test_folders_must_differ() -> None:
    data = with_value("folders.failed", "/srv/a11y/outbox/")
    data["state_dir"] = "/srv/a11y/inbox/../outbox"

    assert problems(data) == [
        "folders.failed: must differ from folders.outbox (/srv/a11y/outbox)",
        "state_dir: must differ from folders.outbox (/srv/a11y/outbox)",
        "state_dir: must differ from folders.failed (/srv/a11y/outbox)",
    ]


def test_siblings_may_share_a_parent() -> None:
    data = with_value("folders.archive", "/srv/a11y/archive")

    assert parse(data).folders.archive == Path("/srv/a11y/archive")


# HTTP and webhook.


@pytest.mark.parametrize(
    "value", ["127.0.0.1:8787", "localhost:0", "[::1]:8787", "0.0.0.0:65535", None]
)
def test_listen_accepts_host_port_bracketed_ipv6_and_null(value: str | None) -> None:
    assert parse(with_value("http.listen", value)).http.listen == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8787", "expected host:port like 127.0.0.1:8787 or [::1]:8787, got '8787'"),
        (":8787", "expected host:port like 127.0.0.1:8787 or [::1]:8787, got ':8787'"),
        (
            "localhost:http",
            "expected host:port like 127.0.0.1:8787 or [::1]:8787, "
            "got 'localhost:http'",
        ),
        ("localhost:65536", "port must be 0-65535 (0 picks a free port), got 65536"),
        ("::1:8787", "put IPv6 addresses in brackets, like [::1]:8787, got '::1:8787'"),
        ("[nope]:8787", "'[nope]' is not an IPv6 address"),
        (8787, "expected a string, got 8787; quote it"),
    ],
)
def test_listen_must_be_host_and_port(value: object, message: str) -> None:
    assert problems(with_value("http.listen", value)) == [f"http.listen: {message}"]


def test_tls_needs_both_certificate_and_key() -> None:
    assert problems(with_value("http.tls_cert_file", "cert.pem")) == [
        "http.tls_key_file: required when http.tls_cert_file is set"
    ]
    assert problems(with_value("http.tls_key_file", "key.pem")) == [
        "http.tls_cert_file: required when http.tls_key_file is set"
    ]


def test_enabled_webhook_needs_a_secret() -> None:
    assert problems(with_value("webhook.enabled", True)) == [
        "webhook.secret: required when webhook.enabled is true (set webhook.secret, "
        'webhook.secret_file, or the systemd credential "webhook-secret")'
    ]


def test_enabled_webhook_needs_the_http_listener() -> None:
    data = with_value("webhook.enabled", True)
    data["webhook"]["secret"] = WEBHOOK_SECRET
    data["http"] = {"listen": None}

    assert problems(data) == [
        "webhook.enabled: needs http.listen, which serves the webhook, but it is null"
    ]


def test_registering_the_webhook_needs_a_public_url() -> None:
    data = with_value("webhook.register", True)
    data["webhook"] |= {"enabled": True, "secret": WEBHOOK_SECRET}

    assert problems(data) == [
        "webhook.register: needs webhook.public_url, the address the service will call"
    ]


def test_registering_a_disabled_webhook_is_refused() -> None:
    data = with_value("webhook.register", True)
    data["webhook"]["public_url"] = "https://syncd.example.com/hook"

    assert problems(data) == [
        "webhook.register: needs webhook.enabled: true, or the service would call "
        "an address nobody serves"
    ]


def test_webhook_public_url_must_be_https() -> None:
    data = with_value("webhook.public_url", "http://syncd.example.com/hook")

    assert problems(data) == [
        "webhook.public_url: the service calls webhooks over https only; expected"
        " an https URL like https://example.com/, got 'http://syncd.example.com/hook'"
    ]


def test_webhook_public_url_may_be_plain_http_on_loopback_for_the_simulator() -> None:
    data = with_value("webhook.public_url", "http://127.0.0.1:8787/hook")

    assert parse(data).webhook.public_url == "http://127.0.0.1:8787/hook"


def test_webhook_path_must_start_with_a_slash() -> None:
    assert problems(with_value("webhook.path", "hooks")) == [
        "webhook.path: must start with '/', got 'hooks'"
    ]


# Timing relations.


def test_poll_max_interval_must_be_at_least_the_interval() -> None:
    data = with_value("poll.interval_seconds", 60)
    data["poll"]["max_interval_seconds"] = 30

    assert problems(data) == [
        "poll.max_interval_seconds: must be at least poll.interval_seconds (60)"
    ]


def test_give_up_must_come_after_the_settle_time() -> None:
    data = with_value("watch.settle_seconds", 10)
    data["watch"]["give_up_after_seconds"] = 10

    assert problems(data) == [
        "watch.give_up_after_seconds: must be longer than watch.settle_seconds (10)"
    ]


# Routes.


def test_route_inherits_the_upload_settings_it_does_not_set() -> None:
    data = minimal()
    data["upload"] = {
        "purchase_order": "PO-MAIN",
        "tags": ["main"],
        "notify_email": "ops@example.com",
        "concurrency": 3,
    }
    data["routes"] = [
        {"folder": "finance", "purchase_order": "PO-FIN", "tags": ["fin"]},
        {"folder": "legal/contracts", "exclude_watermark": True},
    ]

    loaded = parse(data)

    finance, legal = loaded.routes
    assert finance.folder == Path("finance")
    assert finance.upload == dataclasses.replace(
        loaded.upload, purchase_order="PO-FIN", tags=("fin",)
    )
    assert legal.folder == Path("legal/contracts")
    assert legal.upload == dataclasses.replace(loaded.upload, exclude_watermark=True)


def test_upload_for_picks_the_first_route_holding_the_document() -> None:
    data = minimal()
    data["routes"] = [
        {"folder": "finance/2026", "tags": ["fin-2026"]},
        {"folder": "finance", "tags": ["fin"]},
    ]

    loaded = parse(data)

    assert loaded.upload_for(Path("finance/2026/a.pdf")).tags == ("fin-2026",)
    assert loaded.upload_for(Path("finance/b.pdf")).tags == ("fin",)
    assert loaded.upload_for(Path("other/c.pdf")) == loaded.upload


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "/srv/a11y/inbox/finance",
            "must be relative to folders.inbox, got '/srv/a11y/inbox/finance'",
        ),
        ("../finance", "must stay inside folders.inbox (no '..'), got '../finance'"),
        (
            "finance/../../x",
            "must stay inside folders.inbox (no '..'), got 'finance/../../x'",
        ),
        (".", "must name a subfolder of folders.inbox, not the inbox itself"),
        ("", "must name a subfolder of folders.inbox, not the inbox itself"),
        ("~/finance", "must be relative to folders.inbox, got '~/finance'"),
        (["finance"], "expected a string, got a list"),
    ],
)
def test_route_folder_must_be_a_subfolder_of_the_inbox(
    value: object, message: str
) -> None:
    data = minimal() | {"routes": [{"folder": value}]}

    assert problems(data) == [f"routes[0].folder: {message}"]


def test_route_needs_a_folder_and_known_keys() -> None:
    data = minimal() | {"routes": [{"purchase_order": "PO-1", "upload": {}}]}

    assert problems(data) == [
        "routes[0].upload: unknown key (expected one of: comment, concurrency, "
        "duplicates, exclude_watermark, folder, max_file_mb, notify_email, "
        "purchase_order, tags)",
        "routes[0].folder: required",
    ]


def test_route_values_are_validated_like_upload_values() -> None:
    data = minimal() | {"routes": [{"folder": "a", "concurrency": 0}]}

    assert problems(data) == ["routes[0].concurrency: must be at least 1, got 0"]


def test_a_route_behind_an_earlier_one_is_reported() -> None:
    data = minimal()
    data["routes"] = [
        {"folder": "finance"},
        {"folder": "finance/2026"},
        {"folder": "./finance"},
    ]

    assert problems(data) == [
        "routes[1].folder: 'finance/2026' is inside routes[0].folder 'finance', "
        "which matches first; list it earlier",
        "routes[2].folder: 'finance' repeats routes[0].folder; only the first route "
        "for a folder is used",
    ]


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"folder": "a"}, "routes: expected a list of routes, got a mapping"),
        (["finance"], "routes[0]: expected a mapping, got 'finance'"),
    ],
)
def test_routes_must_be_a_list_of_mappings(routes: object, message: str) -> None:
    assert problems(minimal() | {"routes": routes}) == [message]


# Reading the file.


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  base_url: https://a.example\n  key: [unclosed\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    (problem,) = raised.value.problems
    assert problem.startswith("invalid YAML at line 4, column 1: ")
    assert raised.value.source == str(path)


def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "upload: {}\nstate_dir: /a\nupload: {}\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert raised.value.problems == [
        "invalid YAML at line 3, column 1: found duplicate key 'upload'"
    ]


def test_merge_keys_may_repeat_merged_names(tmp_path: Path) -> None:
    text = """\
api: {base_url: "https://a.example", key: k-123456}
folders: {inbox: in, outbox: out, failed: failed}
state_dir: state
upload: &base {concurrency: 2, tags: [x]}
routes:
  - <<: *base
    folder: special
    concurrency: 1
"""

    loaded = load_settings(write(tmp_path, text), environ={})

    assert loaded.routes[0].upload.concurrency == 1
    assert loaded.routes[0].upload.tags == ("x",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- api\n- folders\n",
            "expected a mapping of settings at the top level, got a list",
        ),
        (
            "just words\n",
            "expected a mapping of settings at the top level, got 'just words'",
        ),
        ("", "the file is empty; expected a mapping of settings"),
        ("# only a comment\n", "the file is empty; expected a mapping of settings"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ={})

    assert raised.value.problems == [message]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path / "absent.yaml", environ={})

    assert raised.value.problems == ["cannot read the file: No such file or directory"]
    assert raised.value.source == str(tmp_path / "absent.yaml")


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"state_dir: \xff\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert raised.value.problems == ["not UTF-8 text (bad byte at offset 11)"]


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("when: 2026-13-45\n", "invalid YAML value: month must be in 1..12"),
        ("n: " + "9" * 5000 + "\n", "invalid YAML value: Exceeds the limit"),
        ("a: !!binary xx\n", "invalid YAML at line 1, column 4: failed to decode"),
        (
            "a: !python/object:os.system x\n",
            "invalid YAML at line 1, column 4: could not determine a constructor",
        ),
        ("[" * 5000, "invalid YAML"),
        ("a: !!bool ''\n", "invalid YAML value: KeyError"),
        ("a: !!int ''\n", "invalid YAML value: IndexError"),
        ("a: !!timestamp x\n", "invalid YAML value: AttributeError"),
    ],
)
def test_yaml_values_pyyaml_cannot_build_are_config_errors(
    tmp_path: Path, text: str, start: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ={})

    assert raised.value.problems[0].startswith(start)


def test_cyclic_yaml_aliases_are_reported_not_followed(tmp_path: Path) -> None:
    path = write(tmp_path, "api: &loop {base_url: 'https://a.example', x: *loop}\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert raised.value.problems[0].startswith("api.x: unknown key")


# Anything at all.

_KEYS = sorted(
    {"api", "folders", "state_dir", "upload", "routes", "watch", "poll", "http"}
    | {"webhook", "logging", "key", "key_file", "base_url", "inbox", "outbox"}
    | {"folder", "tags", "listen", "enabled", "secret", "register", "ignore"}
    | {"concurrency", "settle_seconds", "interval_seconds", "max_interval_seconds"}
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            *("${HOME}", "${UNSET}", "$${X}", "/abs", "rel/../x", "https://a.b"),
            *("~x", "[::1]:1", "a:99999", "a@b.c", "..", "-1", ""),
        ]
    )
    | st.binary(max_size=4)
    | st.dates()
)
_TREES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(_KEYS) | st.text(max_size=6) | st.integers(),
            inner,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_TREES
    | st.dictionaries(
        st.sampled_from(_KEYS),
        st.dictionaries(st.sampled_from(_KEYS), _TREES, max_size=5) | _TREES,
        max_size=8,
    )
)
def test_any_structure_yields_settings_or_a_config_error(data: object) -> None:
    try:
        parse_settings(data, Path("/nonexistent/syncd-fuzz"), {"HOME": "/home/x"})
    except ConfigError as error:
        assert error.problems
        assert all(isinstance(problem, str) for problem in error.problems)
