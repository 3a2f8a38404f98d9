"""Typed settings and the YAML loader that fills them.

The loader reads YAML with pyyaml, expands ``${VAR}`` from the environment,
resolves relative paths against the config file's folder and reads secrets
from the value, a ``*_file`` or a systemd credential. It reports every problem
at once as a ``ConfigError``, each line ``key.path: what is wrong``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

import yaml

from syncd.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

WatchMode = Literal["auto", "native", "polling"]
ConflictPolicy = Literal["rename", "overwrite"]
DuplicatePolicy = Literal["reuse", "upload"]
SignatureScheme = Literal["hmac-sha256", "standard-webhooks"]
LogFormat = Literal["auto", "json", "console", "journal"]


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    base_url: str
    key: str = dataclasses.field(repr=False)
    timeout_seconds: float = 30.0
    max_requests_per_second: float | None = 10.0  # None or 0: no client limit


@dataclasses.dataclass(frozen=True)
class FolderSettings:
    inbox: Path
    outbox: Path
    failed: Path
    archive: Path | None = None  # None: originals are deleted after success
    on_conflict: ConflictPolicy = "rename"


@dataclasses.dataclass(frozen=True)
class UploadSettings:
    """What a document is uploaded with; a route may override any field."""

    purchase_order: str | None = None
    tags: tuple[str, ...] = ()
    comment: str | None = None
    exclude_watermark: bool = False
    notify_email: str | None = None
    concurrency: int = 4
    max_file_mb: int = 200
    duplicates: DuplicatePolicy = "reuse"


@dataclasses.dataclass(frozen=True)
class Route:
    """Upload settings for one subfolder of the inbox (first match wins)."""

    folder: Path  # relative to the inbox
    upload: UploadSettings


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    mode: WatchMode = "auto"
    settle_seconds: float = 5.0
    give_up_after_seconds: float = 3600.0
    rescan_seconds: float = 300.0
    polling_interval_seconds: float = 10.0
    ignore: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PollSettings:
    interval_seconds: float = 30.0
    max_interval_seconds: float = 900.0


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    listen: str | None = "127.0.0.1:8787"  # host:port, [::1]:port; None: off
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = 1_048_576


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    enabled: bool = False
    path: str = "/webhooks/accessibledocs"
    secret: str | None = dataclasses.field(default=None, repr=False)
    signature: SignatureScheme = "hmac-sha256"
    public_url: str | None = None
    register: bool = False


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    format: LogFormat = "auto"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The whole configuration, validated; field names are the YAML keys."""

    api: ApiSettings
    folders: FolderSettings
    state_dir: Path
    upload: UploadSettings = UploadSettings()
    routes: tuple[Route, ...] = ()
    watch: WatchSettings = WatchSettings()
    poll: PollSettings = PollSettings()
    http: HttpSettings = HttpSettings()
    webhook: WebhookSettings = WebhookSettings()
    logging: LoggingSettings = LoggingSettings()
    source: Path | None = None  # the file these settings came from

    def upload_for(self, relative: Path) -> UploadSettings:
        """The upload settings of the first route whose folder holds ``relative``."""
        for route in self.routes:
            if relative.is_relative_to(route.folder):
                return route.upload
        return self.upload


# The loader.
#
# Each section is read by a ``_Section``, which reports unknown keys and hands
# every known value to a converter. A converter returns the typed value or
# raises ``_Bad``; the section records the problem under the key path and
# carries on with the default, so one run finds every problem. Converters only
# look at the keys of the schema, never walk unknown structures, so YAML
# aliases that build cycles or huge trees cannot make the loader recurse.

_T = TypeVar("_T")
_S = TypeVar("_S", bound=str)

_CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
# A secret file is a few hundred bytes; anything far larger is the wrong file,
# and reading it whole (think /dev/zero) would hang the start.
_MAX_SECRET_FILE_BYTES = 64 * 1024
# A list whose items are all wrong would otherwise bury the other problems.
_MAX_PROBLEMS_PER_LIST = 5

# ``${NAME}``, ``${NAME:-default}``, and ``$${`` for a literal ``${``.
_VARIABLE = re.compile(
    r"\$(?P<escape>\$)?\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_LOG_LEVELS = ("debug", "info", "warning", "error")


class _Bad(Exception):
    """A value cannot be used; ``findings`` pairs a key-path suffix with a text."""

    def __init__(self, message: str, suffix: str = "") -> None:
        super().__init__(message)
        self.findings = [(suffix, message)]


@dataclasses.dataclass
class _Context:
    environ: Mapping[str, str]
    base_dir: Path
    problems: list[str] = dataclasses.field(default_factory=list)
    # Key paths whose value was unusable, so cross-field checks skip them
    # instead of comparing placeholders.
    bad: set[str] = dataclasses.field(default_factory=set)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")
        self.bad.add(path)

    def usable(self, *paths: str) -> bool:
        return not self.bad.intersection(paths)


_Converter = Callable[[_Context, object], _T]


class _Section:
    """One mapping of the YAML: reports unknown keys and converts known ones."""

    def __init__(
        self, ctx: _Context, path: str, data: object, keys: Collection[str]
    ) -> None:
        self.ctx = ctx
        self.path = path
        # False when the section is not a mapping: that one problem is reported,
        # not each required key it lacks.
        self.ok = True
        self._data: dict[str, object] = {}

        # An empty section (``upload:`` with nothing under it) means defaults.
        if data is None:
            return
        if not isinstance(data, dict):
            ctx.problem(path, f"expected a mapping, got {_describe(data)}")
            self.ok = False
            return

        for key, value in data.items():
            if isinstance(key, str) and key in keys:
                self._data[key] = value
            else:
                ctx.problem(self.key(key), _unknown_key(key, keys))

    def key(self, name: object) -> str:
        return f"{self.path}.{name}" if self.path else str(name)

    def raw(self, name: str) -> object:
        return self._data.get(name)

    def given(self, name: str) -> bool:
        return self._data.get(name) is not None

    def get(self, name: str, convert: _Converter[_T], default: _T) -> _T:
        if name not in self._data:
            return default

        try:
            return convert(self.ctx, self._data[name])
        except _Bad as bad:
            for suffix, message in bad.findings:
                self.ctx.problem(self.key(name) + suffix, message)
            self.ctx.bad.add(self.key(name))

        return default

    def require(self, name: str, convert: _Converter[_T], placeholder: _T) -> _T:
        if not self.given(name):
            if self.ok:
                self.ctx.problem(self.key(name), "required")
            self.ctx.bad.add(self.key(name))
            return placeholder

        return self.get(name, convert, placeholder)


def _keys_of(cls: type[Any], *extra: str) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(cls)) | set(extra)


_TOP_KEYS = _keys_of(Settings) - {"source"}
_API_KEYS = _keys_of(ApiSettings, "key_file")
_FOLDER_KEYS = _keys_of(FolderSettings)
_UPLOAD_KEYS = _keys_of(UploadSettings)
_ROUTE_KEYS = _UPLOAD_KEYS | {"folder"}
_WATCH_KEYS = _keys_of(WatchSettings)
_POLL_KEYS = _keys_of(PollSettings)
_HTTP_KEYS = _keys_of(HttpSettings)
_WEBHOOK_KEYS = _keys_of(WebhookSettings, "secret_file")
_LOGGING_KEYS = _keys_of(LoggingSettings)


def _unknown_key(key: object, known: Collection[str]) -> str:
    if isinstance(key, str):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"

    return f"unknown key (expected one of: {', '.join(sorted(known))})"


def _describe(value: object) -> str:
    """Name a YAML value for a message, briefly and without walking containers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # repr() of a huge integer raises ValueError since Python 3.11.
        return repr(value) if value.bit_length() <= 64 else "a very large number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"

    return f"a {type(value).__name__}"


def _kind(value: object) -> str:
    """Name a value's type only, for secrets whose value must not be shown."""
    if value is None or isinstance(value, bool | dict | list | tuple):
        return _describe(value)
    if isinstance(value, int | float):
        return "a number"

    return f"a {type(value).__name__}"


def _expand(ctx: _Context, text: str) -> tuple[str, bool]:
    """Expand ``${VAR}`` references; tell whether there were any."""
    missing: list[str] = []
    expanded = False

    def replace(match: re.Match[str]) -> str:
        nonlocal expanded
        if match["escape"]:
            return match[0][1:]

        expanded = True
        value = ctx.environ.get(match["name"])
        # As in the shell, ``:-`` also replaces a variable that is set but empty.
        if match["default"] is not None and not value:
            return match["default"]
        if value is None:
            missing.append(match["name"])
            return ""

        return value

    result = _VARIABLE.sub(replace, text)
    if len(missing) == 1:
        raise _Bad(f"environment variable {missing[0]} is not set")
    if missing:
        raise _Bad(f"environment variables {', '.join(missing)} are not set")

    return result, expanded


def _quoted_hint(value: object) -> str:
    if isinstance(value, str):
        return " (a quoted string; remove the quotes)"

    return ""


def _text(ctx: _Context, value: object) -> str:
    if isinstance(value, str):
        return _expand(ctx, value)[0]

    hint = "; quote it" if isinstance(value, int | float) else ""
    raise _Bad(f"expected a string, got {_describe(value)}{hint}")


def _optional_text(ctx: _Context, value: object) -> str | None:
    # An empty string is "not set", so ``${PO:-}`` can switch a value off.
    if value is None:
        return None

    return _text(ctx, value) or None


def _secret_text(ctx: _Context, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_kind(value)}")

    return _expand(ctx, value)[0] or None


def _flag(ctx: _Context, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text, expanded = _expand(ctx, value)
        if expanded and text.strip().lower() in _TRUE_WORDS:
            return True
        if expanded and text.strip().lower() in _FALSE_WORDS:
            return False
        if expanded:
            raise _Bad(f"expected true or false, got {_describe(text)}")

    raise _Bad(f"expected true or false, got {_describe(value)}{_quoted_hint(value)}")


def _parse_number(ctx: _Context, value: object, *, whole: bool) -> int | float:
    """Read a YAML number, or a ``${VAR}`` string that spells one."""
    expected = "a whole number" if whole else "a number"
    number: int | float | None = None
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if is_integer or (isinstance(value, float) and not whole):
        number = cast("int | float", value)
    elif isinstance(value, str):
        text, expanded = _expand(ctx, value)
        if not expanded:
            raise _Bad(
                f"expected {expected}, got {_describe(value)} "
                "(a quoted string; remove the quotes)"
            )
        try:
            number = int(text) if whole else float(text)
        except ValueError:
            raise _Bad(f"expected {expected}, got {_describe(text)}") from None

    if number is None:
        raise _Bad(f"expected {expected}, got {_describe(value)}")
    if isinstance(number, float) and not math.isfinite(number):
        raise _Bad(f"expected a finite number, got {_describe(number)}")

    return number


def _check_minimum(number: float, minimum: float, *, inclusive: bool) -> None:
    if number < minimum or (number == minimum and not inclusive):
        rule = "at least" if inclusive else "greater than"
        shown = _describe(number) if isinstance(number, int) else f"{number:g}"
        raise _Bad(f"must be {rule} {minimum:g}, got {shown}")


def _integer(minimum: int) -> _Converter[int]:
    def convert(ctx: _Context, value: object) -> int:
        number = int(_parse_number(ctx, value, whole=True))
        _check_minimum(number, minimum, inclusive=True)
        return number

    return convert


def _seconds(*, zero_allowed: bool = False) -> _Converter[float]:
    def convert(ctx: _Context, value: object) -> float:
        try:
            number = float(_parse_number(ctx, value, whole=False))
        except OverflowError:
            raise _Bad("is too large") from None
        _check_minimum(number, 0, inclusive=zero_allowed)
        return number

    return convert


def _rate(ctx: _Context, value: object) -> float | None:
    # 0 and null both mean "no client-side limit"; keep one spelling of it.
    if value is None:
        return None

    number = _seconds(zero_allowed=True)(ctx, value)

    return number or None


def _choice(options: tuple[_S, ...], *, fold_case: bool = False) -> _Converter[_S]:
    def convert(ctx: _Context, value: object) -> _S:
        text = _text(ctx, value)
        wanted = text.lower() if fold_case else text
        for option in options:
            if wanted == option:
                return option

        listed = ", ".join(repr(option) for option in options)
        close = difflib.get_close_matches(wanted, options, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _Bad(f"must be one of {listed}, got {_describe(text)}{hint}")

    return convert


def _literal_options(literal: object) -> tuple[str, ...]:
    return tuple(str(option) for option in get_args(literal))


def _path(ctx: _Context, value: object) -> Path:
    text = _text(ctx, value)
    if not text:
        raise _Bad("must not be empty")
    if "\0" in text:
        raise _Bad("must not contain a NUL character")
    if text.startswith("~"):
        raise _Bad(f"{text!r}: '~' is not expanded; write the full path or ${{HOME}}")

    path = Path(text)
    if not path.is_absolute():
        path = ctx.base_dir / path

    # Lexical only: the folders need not exist yet, and "inbox/../outbox" must
    # compare equal to "outbox" in the nesting checks.
    return Path(os.path.normpath(path))


def _optional_path(ctx: _Context, value: object) -> Path | None:
    return None if value is None else _path(ctx, value)


def _url(*schemes: str) -> _Converter[str]:
    example = f"{schemes[-1]}://example.com/"

    def convert(ctx: _Context, value: object) -> str:
        text = _text(ctx, value)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise _Bad(f"is not a valid URL: {_describe(text)}") from None

        if parts.scheme not in schemes or not parts.hostname:
            wanted = " or ".join(schemes)
            raise _Bad(
                f"expected an {wanted} URL like {example}, got {_describe(text)}"
            )
        return text

    return convert


def _optional_url(*schemes: str) -> _Converter[str | None]:
    convert_url = _url(*schemes)

    def convert(ctx: _Context, value: object) -> str | None:
        return None if value is None else convert_url(ctx, value)

    return convert


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _public_url(ctx: _Context, value: object) -> str | None:
    """An https URL; plain http only for a loopback host (the simulator)."""
    text = _optional_url("http", "https")(ctx, value)
    if text is not None:
        parts = urlsplit(text)
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            raise _Bad(
                "the service calls webhooks over https only; expected an https"
                f" URL like https://example.com/, got {_describe(text)}"
            )

    return text


def _email(ctx: _Context, value: object) -> str | None:
    text = _optional_text(ctx, value)
    if text is not None and not _EMAIL.fullmatch(text):
        raise _Bad(f"expected an email address, got {_describe(text)}")

    return text


def _string_list(ctx: _Context, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad(f"expected a list of strings, got {_describe(value)}")

    items: list[str] = []
    problems: list[_Bad] = []
    for index, item in enumerate(value):
        try:
            text = _text(ctx, item)
        except _Bad as bad:
            problems.append(_Bad(str(bad), f"[{index}]"))
            continue
        if not text:
            problems.append(_Bad("must not be empty", f"[{index}]"))
        items.append(text)

    if problems:
        first = problems[0]
        for more in problems[1:_MAX_PROBLEMS_PER_LIST]:
            first.findings.extend(more.findings)
        if len(problems) > _MAX_PROBLEMS_PER_LIST:
            hidden = len(problems) - _MAX_PROBLEMS_PER_LIST
            first.findings.append(("", f"{hidden} more items are wrong"))
        raise first

    return tuple(items)


def _listen(ctx: _Context, value: object) -> str | None:
    if value is None:
        return None

    text = _text(ctx, value)
    usage = "expected host:port like 127.0.0.1:8787 or [::1]:8787"
    host, colon, port_text = text.rpartition(":")
    if not colon or not host or any(char.isspace() for char in text):
        raise _Bad(f"{usage}, got {_describe(text)}")

    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _Bad(f"{host!r} is not an IPv6 address") from None
    elif ":" in host or "[" in host or "]" in host:
        raise _Bad(f"put IPv6 addresses in brackets, like [::1]:8787, got {text!r}")

    if not (port_text.isascii() and port_text.isdigit()):
        raise _Bad(f"{usage}, got {_describe(text)}")
    if int(port_text) > 65535:
        raise _Bad(f"port must be 0-65535 (0 picks a free port), got {port_text}")

    return text


def _route_folder(ctx: _Context, value: object) -> Path:
    text = _text(ctx, value)
    folder = Path(text)
    if folder.is_absolute() or text.startswith("~"):
        raise _Bad(f"must be relative to folders.inbox, got {_describe(text)}")
    if ".." in folder.parts:
        raise _Bad(f"must stay inside folders.inbox (no '..'), got {_describe(text)}")
    if not text.strip() or folder == Path():
        raise _Bad("must name a subfolder of folders.inbox, not the inbox itself")
    if "\0" in text:
        raise _Bad("must not contain a NUL character")

    return folder


def _read_secret_file(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise _Bad(
            f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from None

    if len(data) > _MAX_SECRET_FILE_BYTES:
        raise _Bad(f"{path} is larger than 64 KiB; is it the right file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"{path} is not UTF-8 text") from None

    # ``echo key > file`` and editors add a final newline that is no part of
    # the secret.
    secret = text.rstrip("\r\n")
    if not secret:
        raise _Bad(f"{path} is empty")

    return secret


def _secret(section: _Section, name: str, credential: str) -> str | None:
    """Read a secret from its value, its ``*_file`` or a systemd credential.

    Returns None when none of them is given; reports a problem and returns
    None when one is given but unusable. The secret never enters a message.
    """
    ctx = section.ctx
    file_name = f"{name}_file"
    value = section.get(name, _secret_text, None)
    secret_file = section.get(file_name, _optional_path, None)
    if not ctx.usable(section.key(name), section.key(file_name)):
        return None

    if value is not None and secret_file is not None:
        ctx.problem(
            section.key(name),
            f"set either {section.key(name)} or {section.key(file_name)}, not both",
        )
        return None
    if value is not None:
        return value
    if secret_file is not None:
        try:
            return _read_secret_file(secret_file)
        except _Bad as bad:
            ctx.problem(section.key(file_name), str(bad))
            return None

    # systemd's LoadCredential= puts each credential in this folder; see
    # systemd.exec(5), "Credentials".
    directory = ctx.environ.get(_CREDENTIALS_DIRECTORY)
    if not directory:
        return None
    path = Path(directory) / credential
    if not path.exists():
        return None
    try:
        return _read_secret_file(path)
    except _Bad as bad:
        ctx.problem(section.key(name), f'systemd credential "{credential}": {bad}')

    return None


def _parse_api(ctx: _Context, data: object) -> ApiSettings:
    section = _Section(ctx, "api", data, _API_KEYS)
    defaults = ApiSettings(base_url="", key="")

    base_url = section.require("base_url", _url("http", "https"), "")
    key = _secret(section, "key", "api-key")
    if key is None and section.ok and ctx.usable("api.key", "api.key_file"):
        ctx.problem(
            "api.key",
            'required (set api.key, api.key_file, or the systemd credential "api-key")',
        )

    return ApiSettings(
        base_url=base_url,
        key=key or "",
        timeout_seconds=section.get(
            "timeout_seconds", _seconds(), defaults.timeout_seconds
        ),
        max_requests_per_second=section.get(
            "max_requests_per_second", _rate, defaults.max_requests_per_second
        ),
    )


def _parse_folders(ctx: _Context, data: object) -> FolderSettings:
    section = _Section(ctx, "folders", data, _FOLDER_KEYS)
    placeholder = Path()
    policies = cast("tuple[ConflictPolicy, ...]", _literal_options(ConflictPolicy))

    return FolderSettings(
        inbox=section.require("inbox", _path, placeholder),
        outbox=section.require("outbox", _path, placeholder),
        failed=section.require("failed", _path, placeholder),
        archive=section.get("archive", _optional_path, None),
        on_conflict=section.get("on_conflict", _choice(policies), "rename"),
    )


def _parse_upload(section: _Section, base: UploadSettings) -> UploadSettings:
    """Read upload settings; keys the section does not set keep ``base``'s."""
    duplicates = cast("tuple[DuplicatePolicy, ...]", _literal_options(DuplicatePolicy))

    return UploadSettings(
        purchase_order=section.get(
            "purchase_order", _optional_text, base.purchase_order
        ),
        tags=section.get("tags", _string_list, base.tags),
        comment=section.get("comment", _optional_text, base.comment),
        exclude_watermark=section.get(
            "exclude_watermark", _flag, base.exclude_watermark
        ),
        notify_email=section.get("notify_email", _email, base.notify_email),
        concurrency=section.get("concurrency", _integer(1), base.concurrency),
        max_file_mb=section.get("max_file_mb", _integer(1), base.max_file_mb),
        duplicates=section.get("duplicates", _choice(duplicates), base.duplicates),
    )


def _parse_routes(
    ctx: _Context, data: object, upload: UploadSettings
) -> tuple[Route, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        ctx.problem("routes", f"expected a list of routes, got {_describe(data)}")
        return ()

    routes: list[Route] = []
    for index, item in enumerate(data):
        section = _Section(ctx, f"routes[{index}]", item, _ROUTE_KEYS)
        folder = section.require("folder", _route_folder, Path())
        routes.append(Route(folder=folder, upload=_parse_upload(section, upload)))

    # First match wins, so a route at or under an earlier one never matches.
    for index, route in enumerate(routes):
        if not ctx.usable(f"routes[{index}].folder"):
            continue
        for earlier_index, earlier in enumerate(routes[:index]):
            if not ctx.usable(f"routes[{earlier_index}].folder"):
                continue
            if route.folder == earlier.folder:
                ctx.problem(
                    f"routes[{index}].folder",
                    f"'{route.folder}' repeats routes[{earlier_index}].folder; "
                    "only the first route for a folder is used",
                )
                break
            if route.folder.is_relative_to(earlier.folder):
                ctx.problem(
                    f"routes[{index}].folder",
                    f"'{route.folder}' is inside routes[{earlier_index}].folder "
                    f"'{earlier.folder}', which matches first; list it earlier",
                )
                break

    return tuple(routes)


def _parse_watch(ctx: _Context, data: object) -> WatchSettings:
    section = _Section(ctx, "watch", data, _WATCH_KEYS)
    defaults = WatchSettings()
    modes = cast("tuple[WatchMode, ...]", _literal_options(WatchMode))

    settings = WatchSettings(
        mode=section.get("mode", _choice(modes), defaults.mode),
        settle_seconds=section.get(
            "settle_seconds", _seconds(zero_allowed=True), defaults.settle_seconds
        ),
        give_up_after_seconds=section.get(
            "give_up_after_seconds", _seconds(), defaults.give_up_after_seconds
        ),
        rescan_seconds=section.get(
            "rescan_seconds", _seconds(), defaults.rescan_seconds
        ),
        polling_interval_seconds=section.get(
            "polling_interval_seconds", _seconds(), defaults.polling_interval_seconds
        ),
        ignore=section.get("ignore", _string_list, defaults.ignore),
    )

    paths = ("watch.settle_seconds", "watch.give_up_after_seconds")
    if ctx.usable(*paths) and settings.give_up_after_seconds <= settings.settle_seconds:
        ctx.problem(
            "watch.give_up_after_seconds",
            f"must be longer than watch.settle_seconds ({settings.settle_seconds:g})",
        )

    return settings


def _parse_poll(ctx: _Context, data: object) -> PollSettings:
    section = _Section(ctx, "poll", data, _POLL_KEYS)
    defaults = PollSettings()

    settings = PollSettings(
        interval_seconds=section.get(
            "interval_seconds", _seconds(), defaults.interval_seconds
        ),
        max_interval_seconds=section.get(
            "max_interval_seconds", _seconds(), defaults.max_interval_seconds
        ),
    )

    paths = ("poll.interval_seconds", "poll.max_interval_seconds")
    if ctx.usable(*paths) and settings.max_interval_seconds < settings.interval_seconds:
        ctx.problem(
            "poll.max_interval_seconds",
            f"must be at least poll.interval_seconds ({settings.interval_seconds:g})",
        )

    return settings


def _parse_http(ctx: _Context, data: object) -> HttpSettings:
    section = _Section(ctx, "http", data, _HTTP_KEYS)
    defaults = HttpSettings()

    settings = HttpSettings(
        listen=section.get("listen", _listen, defaults.listen),
        tls_cert_file=section.get("tls_cert_file", _optional_path, None),
        tls_key_file=section.get("tls_key_file", _optional_path, None),
        max_body_bytes=section.get(
            "max_body_bytes", _integer(1), defaults.max_body_bytes
        ),
    )

    # A certificate without its key (or the reverse) cannot serve TLS.
    cert, key = "http.tls_cert_file", "http.tls_key_file"
    has_cert = settings.tls_cert_file is not None
    has_key = settings.tls_key_file is not None
    if has_cert and not has_key and ctx.usable(key):
        ctx.problem(key, f"required when {cert} is set")
    if has_key and not has_cert and ctx.usable(cert):
        ctx.problem(cert, f"required when {key} is set")

    return settings


def _parse_webhook(ctx: _Context, data: object, http: HttpSettings) -> WebhookSettings:
    section = _Section(ctx, "webhook", data, _WEBHOOK_KEYS)
    defaults = WebhookSettings()
    schemes = cast("tuple[SignatureScheme, ...]", _literal_options(SignatureScheme))

    settings = WebhookSettings(
        enabled=section.get("enabled", _flag, defaults.enabled),
        path=section.get("path", _webhook_path, defaults.path),
        secret=_secret(section, "secret", "webhook-secret"),
        signature=section.get("signature", _choice(schemes), defaults.signature),
        public_url=section.get("public_url", _public_url, None),
        register=section.get("register", _flag, defaults.register),
    )

    if settings.enabled:
        secret_paths = ("webhook.secret", "webhook.secret_file")
        if settings.secret is None and ctx.usable(*secret_paths):
            ctx.problem(
                "webhook.secret",
                "required when webhook.enabled is true (set webhook.secret, "
                'webhook.secret_file, or the systemd credential "webhook-secret")',
            )
        if http.listen is None and ctx.usable("http.listen"):
            ctx.problem(
                "webhook.enabled",
                "needs http.listen, which serves the webhook, but it is null",
            )

    if settings.register:
        if settings.public_url is None and ctx.usable("webhook.public_url"):
            ctx.problem(
                "webhook.register",
                "needs webhook.public_url, the address the service will call",
            )
        if not settings.enabled and ctx.usable("webhook.enabled"):
            ctx.problem(
                "webhook.register",
                "needs webhook.enabled: true, or the service would call an "
                "address nobody serves",
            )

    return settings


def _webhook_path(ctx: _Context, value: object) -> str:
    text = _text(ctx, value)
    if not text.startswith("/"):
        raise _Bad(f"must start with '/', got {_describe(text)}")

    return text


def _parse_logging(ctx: _Context, data: object) -> LoggingSettings:
    section = _Section(ctx, "logging", data, _LOGGING_KEYS)
    defaults = LoggingSettings()
    formats = cast("tuple[LogFormat, ...]", _literal_options(LogFormat))

    return LoggingSettings(
        level=section.get("level", _choice(_LOG_LEVELS, fold_case=True), "info"),
        format=section.get("format", _choice(formats), defaults.format),
    )


def _check_places(ctx: _Context, folders: FolderSettings, state_dir: Path) -> None:
    """Check that the folders and the state directory do not overlap.

    A result or archive folder inside the inbox would be picked up and
    uploaded again; an inbox inside one of the others would be moved away.
    """
    places = [
        ("folders.inbox", folders.inbox),
        ("folders.outbox", folders.outbox),
        ("folders.archive", folders.archive),
        ("folders.failed", folders.failed),
        ("state_dir", state_dir),
    ]
    usable = [
        (name, path) for name, path in places if path is not None and ctx.usable(name)
    ]

    for index, (name, path) in enumerate(usable):
        for other_name, other in usable[:index]:
            if path == other:
                ctx.problem(name, f"must differ from {other_name} ({other})")

    if not ctx.usable("folders.inbox"):
        return
    inbox = folders.inbox
    for name, path in usable[1:]:
        if path == inbox:
            continue
        if path.is_relative_to(inbox):
            ctx.problem(
                name,
                f"must not be inside folders.inbox ({inbox}), or syncd would "
                "pick up its own files",
            )
        elif inbox.is_relative_to(path):
            ctx.problem("folders.inbox", f"must not be inside {name} ({path})")


def parse_settings(
    data: object,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    source: Path | None = None,
) -> Settings:
    """Validate already-parsed configuration data and build ``Settings``.

    Use it for configurations built in code (tests, the demo);
    ``load_settings`` reads a file and calls it.

    Args:
        data: The parsed YAML document, normally a dict.
        base_dir: The folder relative paths are resolved against.
        environ: Where ``${VAR}`` references and ``CREDENTIALS_DIRECTORY`` are
            looked up; ``os.environ`` when omitted.
        source: The file the data came from, kept in ``Settings.source`` and
            named in errors.

    Returns:
        The validated settings, paths absolute and secrets read.

    Raises:
        ConfigError: listing every problem found, each ``key.path: problem``.
    """
    where = str(source) if source is not None else None
    if not isinstance(data, dict):
        raise ConfigError(
            [f"expected a mapping of settings at the top level, got {_describe(data)}"],
            source=where,
        )

    ctx = _Context(
        environ=os.environ if environ is None else environ,
        base_dir=base_dir.absolute(),
    )
    top = _Section(ctx, "", data, _TOP_KEYS)

    api = _parse_api(ctx, top.raw("api"))
    folders = _parse_folders(ctx, top.raw("folders"))
    state_dir = top.require("state_dir", _path, Path())
    upload = _parse_upload(
        _Section(ctx, "upload", top.raw("upload"), _UPLOAD_KEYS), UploadSettings()
    )
    routes = _parse_routes(ctx, top.raw("routes"), upload)
    watch = _parse_watch(ctx, top.raw("watch"))
    poll = _parse_poll(ctx, top.raw("poll"))
    http = _parse_http(ctx, top.raw("http"))
    webhook = _parse_webhook(ctx, top.raw("webhook"), http)
    logging = _parse_logging(ctx, top.raw("logging"))
    _check_places(ctx, folders, state_dir)

    if ctx.problems:
        raise ConfigError(ctx.problems, source=where)

    return Settings(
        api=api,
        folders=folders,
        state_dir=state_dir,
        upload=upload,
        routes=routes,
        watch=watch,
        poll=poll,
        http=http,
        webhook=webhook,
        logging=logging,
        source=source,
    )


class _Loader(yaml.SafeLoader):
    """pyyaml's safe loader, refusing duplicate keys.

    pyyaml keeps the last of two equal keys without a word, so a second
    ``upload:`` section would silently replace the first.
    """

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Merge keys (``<<: *defaults``) may repeat; only plain keys count.
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            identity = (key_node.tag, key_node.value)
            if identity in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(identity)

        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> object:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"cannot read the file: {reason}"], source=source) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"not UTF-8 text (bad byte at offset {exc.start})"], source=source
        ) from exc

    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        # Only the mark and the problem: str(exc) quotes the offending line,
        # which may hold a secret.
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        message = f"invalid YAML{where}: {problem}"
    except yaml.YAMLError as exc:
        message = f"invalid YAML: {type(exc).__name__}"
        if isinstance(exc, yaml.reader.ReaderError):
            message = f"invalid YAML: {exc.reason} at offset {exc.position}"
    except RecursionError:
        message = "invalid YAML: nested too deeply"
    except Exception as exc:  # noqa: BLE001 - the parser's errors are unbounded
        # pyyaml's constructors fail on malformed values with whatever the
        # conversion raises: ValueError for the date 2026-13-45 or an integer
        # of more than 4300 digits, KeyError for ``!!bool ''``, IndexError for
        # ``!!int ''``, AttributeError for ``!!timestamp x``.
        detail = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
        message = f"invalid YAML value: {detail}"

    raise ConfigError([message], source=source)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and return the settings in the YAML file at ``path``.

    Args:
        path: The configuration file; relative paths inside it are resolved
            against its folder.
        environ: Where ``${VAR}`` references and ``CREDENTIALS_DIRECTORY`` are
            looked up; ``os.environ`` when omitted.

    Returns:
        The validated settings, ``source`` set to ``path``.

    Raises:
        ConfigError: the file cannot be read or parsed, or the settings are
            wrong; every problem found is listed, each ``key.path: problem``.
    """
    data = _read_yaml(path)
    if data is None:
        raise ConfigError(
            ["the file is empty; expected a mapping of settings"], source=str(path)
        )

    return parse_settings(data, path.absolute().parent, environ, source=path)
