"""The ``syncd`` command line.

Every command that reads the configuration takes ``-c FILE``, else
``$SYNCD_CONFIG``, else ``/etc/syncd/config.yaml``. Exit codes come from
``ExitCode``: 78 for a configuration error (systemd then stops restarting),
69 when the API refuses the key, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd import __version__, files
from syncd.api import ApiClient
from syncd.config import Settings, load_settings
from syncd.errors import (
    AuthError,
    ConfigError,
    ExitCode,
    PermanentError,
    SyncdError,
    TransientError,
)
from syncd.journal import Journal, SqliteJournal, Stage
from syncd.logs import configure_logging, register_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from syncd.api import Webhook

DEFAULT_CONFIG = Path("/etc/syncd/config.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``syncd`` command; return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitCode.USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return exc.exit_code
    except AuthError as exc:
        print(f"syncd: {exc}\n  check api.key and api.base_url", file=sys.stderr)
        return exc.exit_code
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.TEMPFAIL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Sync a shared folder of PDFs with AccessibleDocs.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "-c",
            "--config",
            type=Path,
            help="configuration file"
            " (default: $SYNCD_CONFIG, then /etc/syncd/config.yaml)",
        )
        return sub

    with_config(command("run", _run, "run the daemon in the foreground"))
    once = with_config(
        command("once", _once, "take what is in the inbox now, finish it, exit")
    )
    once.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting after this long (exit 75; the work resumes later)",
    )
    with_config(
        command(
            "check", _check, "check the configuration, the key and the purchase orders"
        )
    )
    status = with_config(
        command("status", _status, "show documents per stage and recent failures")
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    retry = with_config(command("retry", _retry, "send failed documents through again"))
    retry.add_argument(
        "documents",
        nargs="+",
        metavar="PATH|ID",
        help="a file in failed/, or a document id",
    )
    with_config(
        command(
            "purchase-orders", _purchase_orders, "list the account's purchase orders"
        )
    )
    _add_webhook_commands(commands, with_config)
    demo = command(
        "demo", _demo, "run a self-contained demonstration against the simulator"
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo folder afterwards"
    )

    from syncd.simulator import cli as simulator_cli

    simulator = command(
        "simulator", simulator_cli.run, "run the AccessibleDocs simulator"
    )
    simulator_cli.add_arguments(simulator)

    return parser


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("SYNCD_CONFIG") or DEFAULT_CONFIG
    settings = load_settings(Path(path))
    configure_logging(settings.logging.level, settings.logging.format)
    register_secret(settings.api.key)
    if settings.webhook.secret:
        register_secret(settings.webhook.secret)

    return settings


def _run(args: argparse.Namespace) -> int:
    from syncd.daemon import Daemon

    settings = _settings(args)
    return asyncio.run(Daemon(settings).run())


def _once(args: argparse.Namespace) -> int:
    from syncd.daemon import Daemon

    settings = _settings(args)
    return asyncio.run(Daemon(settings).run(once=True, timeout=args.timeout))


def _check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"ok    configuration {settings.source}")
    code = ExitCode.OK
    for name, folder in _folders(settings):
        problem, note = _folder_problem(folder)
        print(f"{'FAIL' if problem else 'ok  '}  {name} {folder}{problem or note}")
        code = ExitCode.CONFIG if problem else code
    try:
        orders = asyncio.run(_read_orders(settings))
    except TransientError as exc:
        print(f"FAIL  api {settings.api.base_url} not reachable: {exc}")
        return ExitCode.UNAVAILABLE
    print(f"ok    api {settings.api.base_url} accepted the key")

    from syncd.purchase_orders import configured_references

    for key, reference in configured_references(settings).items():
        order = next((o for o in orders if o.matches(reference)), None)
        if order is None:
            print(f"FAIL  {key} {reference}: not on this account")
            code = ExitCode.CONFIG
        elif not order.usable:
            print(
                f"FAIL  {key} {reference}: {order.status},"
                f" {order.available_pages} pages left"
            )
            code = ExitCode.CONFIG
        else:
            print(
                f"ok    {key} {reference}: approved,"
                f" {order.available_pages} of {order.pages} pages left"
            )

    return code


def _folders(settings: Settings) -> list[tuple[str, Path]]:
    folders = settings.folders
    named = [
        ("inbox", folders.inbox),
        ("outbox", folders.outbox),
        ("failed", folders.failed),
    ]
    if folders.archive is not None:
        named.append(("archive", folders.archive))
    named.append(("state_dir", settings.state_dir))
    return named


def _folder_problem(folder: Path) -> tuple[str, str]:
    """A problem with ``folder`` (or "") and a note for a good one."""
    if folder.exists():
        if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
            return ": syncd may not read and write it", ""
        return "", ""
    if os.access(_existing_parent(folder), os.W_OK):
        return "", " (does not exist yet; syncd creates it)"

    return ": does not exist, and syncd may not create it", ""


def _existing_parent(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


async def _read_orders(settings: Settings) -> list[Any]:
    async with ApiClient(settings.api) as api:
        return await api.purchase_orders()


def _purchase_orders(args: argparse.Namespace) -> int:
    settings = _settings(args)
    orders = asyncio.run(_read_orders(settings))
    print(f"{'NUMBER':<16} {'ID':<24} {'STATUS':<10} {'PAGES':>8} {'LEFT':>8}")
    for order in orders:
        print(
            f"{order.number:<16} {order.id:<24} {order.status:<10}"
            f" {order.pages:>8} {order.available_pages:>8}"
        )
    return ExitCode.OK


def _open_journal(settings: Settings) -> SqliteJournal:
    from syncd.daemon import journal_path

    return SqliteJournal(journal_path(settings))


def status_report(journal: Journal) -> dict[str, Any]:
    """What ``syncd status`` shows, as plain data."""
    now = time.time()
    counts = journal.counts()

    def describe(doc: Any) -> dict[str, Any]:
        return {
            "id": doc.id,
            "file": doc.path,
            "stage": doc.stage.value,
            "waiting_seconds": round(now - doc.discovered_at),
            "held": doc.hold_reason,
            "remote_id": doc.remote_id,
            "attempts": doc.attempts,
        }

    return {
        "stages": {stage.value: counts[stage] for stage in Stage},
        "oldest_waiting": [describe(doc) for doc in journal.oldest_waiting(10)],
        "recent_failures": [
            {
                **describe(doc),
                "reason": doc.error_reason,
                "message": doc.error_message,
                "moved_to": doc.final_path,
            }
            for doc in journal.recent(Stage.FAILED, 10)
        ],
        "purchase_orders": journal.get_meta("purchase_orders"),
    }


def _status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    journal = _open_journal(settings)
    try:
        report = status_report(journal)
    finally:
        journal.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return ExitCode.OK

    print("documents per stage:")
    for stage, count in report["stages"].items():
        print(f"  {stage:<13} {count:>7}")
    if report["oldest_waiting"]:
        print("oldest waiting:")
        for doc in report["oldest_waiting"]:
            held = f"  held: {doc['held']}" if doc["held"] else ""
            waited = f"{doc['waiting_seconds']:>7}s"
            print(f"  #{doc['id']:<6} {doc['stage']:<13} {waited}  {doc['file']}{held}")
    if report["recent_failures"]:
        print("recent failures:")
        for doc in report["recent_failures"]:
            print(
                f"  #{doc['id']:<6} {doc['reason']:<20} {doc['file']}: {doc['message']}"
            )
    orders = report["purchase_orders"]
    if orders:
        read = time.strftime("%Y-%m-%d %H:%M", time.localtime(orders["read_at"]))
        print(f"purchase orders (as read {read}):")
        for order in orders["orders"]:
            name = order["number"] or order["id"]
            left = f"{order['available_pages']:>8} of {order['pages']}"
            print(f"  {name:<16} {order['status']:<10} {left} pages left")

    return ExitCode.OK


def _retry(args: argparse.Namespace) -> int:
    settings = _settings(args)
    journal = _open_journal(settings)
    code = ExitCode.OK
    try:
        for reference in args.documents:
            message = retry_failed(settings, journal, reference)
            print(message)
            if message.startswith("not found") or message.startswith("cannot"):
                code = ExitCode.SOME_FAILED
    finally:
        journal.close()
    return code


def retry_failed(settings: Settings, journal: Journal, reference: str) -> str:
    """Move a failed document's original back into the inbox; say what happened.

    The running daemon (or the next ``syncd once``) takes it as a new
    document; its earlier, failed entry stays in the journal as history.
    """
    failed_dir = settings.folders.failed
    path = Path(reference).expanduser()
    if path.exists():
        candidates = [str(path.resolve())]
    else:
        candidates = [
            doc.final_path
            for doc in journal.find(reference)
            if doc.stage is Stage.FAILED and doc.final_path
        ]
    for candidate in candidates:
        source = Path(candidate)
        if not source.is_file():
            continue
        try:
            relative = source.relative_to(failed_dir.resolve())
        except ValueError:
            return f"cannot retry {reference}: it is not inside {failed_dir}"
        target = files.free_name(settings.folders.inbox, relative.as_posix(), "rename")
        files.move(source, target)
        source.with_name(source.name + ".error.json").unlink(missing_ok=True)
        return f"retrying {reference}: moved back to {target}"

    return f"not found: {reference} (give a file in {failed_dir} or a document id)"


def _demo(args: argparse.Namespace) -> int:
    from syncd.demo import run_demo

    return run_demo(keep=args.keep)


def _add_webhook_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    about = "list, register or delete the company's webhooks"
    webhooks = commands.add_parser("webhooks", help=about, description=about)
    actions = webhooks.add_subparsers(title="actions", metavar="ACTION")

    def action(
        name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sub = with_config(actions.add_parser(name, help=help, description=help))
        sub.set_defaults(handler=handler)
        return sub

    action("list", _webhooks_list, "list the webhooks the service calls")
    register = action(
        "register",
        _webhooks_register,
        "register a file_processed webhook, unless it already exists",
    )
    register.add_argument(
        "url", nargs="?", help="the address to call (default: webhook.public_url)"
    )
    delete = action("delete", _webhooks_delete, "delete one webhook")
    delete.add_argument("id", metavar="ID", help="the webhook's id (see list)")


def _webhooks_list(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def read() -> list[Webhook]:
        async with ApiClient(settings.api) as api:
            return await api.webhooks()

    hooks = asyncio.run(read())
    if not hooks:
        print("no webhooks")
        return ExitCode.OK
    print(f"{'ID':<24} {'EVENT':<16} URL")
    for hook in hooks:
        print(f"{hook.id:<24} {hook.event:<16} {hook.url}")

    return ExitCode.OK


def _webhooks_register(args: argparse.Namespace) -> int:
    from syncd.listener import register_webhook

    settings = _settings(args)
    url = args.url or settings.webhook.public_url
    if not url:
        print(
            "syncd: give the URL to register, or set webhook.public_url",
            file=sys.stderr,
        )
        return ExitCode.USAGE

    async def register() -> tuple[Webhook, bool]:
        async with ApiClient(settings.api) as api:
            return await register_webhook(api, url)

    hook, created = asyncio.run(register())
    if created:
        print(f"registered {hook.id} {hook.event} {hook.url}")
    else:
        print(f"already registered: {hook.id} {hook.event} {hook.url}")

    return ExitCode.OK


def _webhooks_delete(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def delete() -> None:
        async with ApiClient(settings.api) as api:
            await api.delete_webhook(args.id)

    try:
        asyncio.run(delete())
    except PermanentError as exc:
        if exc.reason != "not_found":
            raise
        print(f"syncd: no webhook with id {args.id}", file=sys.stderr)
        return ExitCode.SOME_FAILED
    print(f"deleted {args.id}")

    return ExitCode.OK
