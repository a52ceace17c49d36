"""The `millwatch` command of the central host: serve, scrape, check, simulate-serial, demo, bundle,
key, user, token.

The exporter-only install of a machine PC (Python 3.9 or newer, no pydantic, FastAPI, SQLAlchemy,
httpx or APScheduler) has this command too, for `simulate-serial`. So this module imports nothing
of the central host at import time, `--help` works everywhere, and a central command names what it
lacks (the central install, Python 3.11) in one line instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: importing the settings needs pydantic (the central install)
    from server.settings import Settings

PROG = "millwatch"
LOG_LEVELS = ("debug", "info", "warning", "error")
CENTRAL_COMMANDS = frozenset({"serve", "scrape", "check", "demo", "bundle", "key", "user", "token", "rules"})
# scraper/fetch.py uses asyncio.timeout (3.11); the exporter alone runs on 3.9.
CENTRAL_PYTHON = (3, 11)
# Defaults shown by --help; server.settings.Settings holds the real ones (a test keeps them equal),
# but importing it needs pydantic, which the exporter-only install has not.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# The longest scrape interval an inventory accepts (scraper.inventory.MAX_SCRAPE_DURATION).
MAX_INTERVAL_SECONDS = 86400.0
# Top-level import names of the central extra's packages and of what they pull in: a missing one
# means the central extra is not installed.
CENTRAL_MODULES = frozenset(
    {
        "alembic",
        "anyio",
        "apscheduler",
        "argon2",
        "fastapi",
        "hatchling",
        "packaging",
        "httpcore",
        "httptools",
        "httpx",
        "limits",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "sniffio",
        "sqlalchemy",
        "starlette",
        "uvicorn",
    }
)
# Libraries that log once per HTTP request or per job run: an operator wants events, not traffic.
_CHATTY_LOGGERS = ("httpx", "httpcore", "apscheduler", "uvicorn.access", "alembic")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `millwatch` command with `argv` (default: sys.argv[1:]); returns the exit status.

    Exit status 2, with one `millwatch: error: ...` line (and the inventory's problems below it),
    when a command cannot start: on Python older than 3.11 or without the central extra for a
    central command, or for a bad inventory, database, setting or listening address.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The simulator parses its own options (and answers its own --help).
    if args_list[:1] == ["simulate-serial"]:
        from exporter.simulator import main as simulate_main

        return simulate_main(args_list[1:])

    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command in CENTRAL_COMMANDS and sys.version_info < CENTRAL_PYTHON:
        version = ".".join(str(part) for part in sys.version_info[:3])
        return _fail(f"the central host needs Python 3.11 or newer (this is {version})")
    configure_logging(getattr(args, "log_level", "info"))
    try:
        return _run(args)
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] not in CENTRAL_MODULES:
            raise
        return _fail("this command needs the central install: pip install 'millwatch[central]'")


def _run(args: argparse.Namespace) -> int:
    """Run the chosen subcommand; its start-up failures become one error line and exit status 2.

    `serve` and `scrape` share this: same header, same messages, same exit statuses.
    """
    from scraper.alerting.errors import NotificationsError
    from scraper.errors import InventoryError, InventoryUnreadable, StoreError
    from server.errors import KeyNotFound, ServerError

    try:
        result: int = args.handler(args)
        return result
    except KeyboardInterrupt:
        return 0  # Ctrl-C before the server took over its signals: a normal stop
    except KeyNotFound as e:
        return _fail(str(e), exit_status=1)
    except ServerError as e:
        return _fail(str(e))
    except InventoryUnreadable as e:
        return _fail("cannot read the inventory", str(e))
    except InventoryError as e:
        return _fail("invalid inventory", str(e))
    except NotificationsError as e:
        return _fail("invalid notifications settings", str(e))
    except StoreError as e:
        return _fail(f"database: {e}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `millwatch`, with every subcommand (needs only the standard library)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="millwatch central host: scrape the machines' exporters, store the readings, "
        "serve the API and the live map.",
        epilog="Settings also come from MILLWATCH_* environment variables (see docs/operations.md); "
        "flags win over them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the server (API, live map) with the scraper in the same process",
        description="Run the server: REST API, WebSocket live updates and the map page, with the "
        "scraper in the same process unless --no-scrape is given.",
    )
    _add_inventory_and_db(serve)
    serve.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST}; env MILLWATCH_HOST)")
    serve.add_argument("--port", type=_port, help=f"TCP port (default {DEFAULT_PORT}; env MILLWATCH_PORT)")
    serve.add_argument(
        "--no-scrape",
        action="store_true",
        help="do not scrape: show what separate `millwatch scrape` processes write to the database "
        "(PostgreSQL: told of each change through LISTEN/NOTIFY; SQLite: read every 2 s; "
        "machines turn stale when nobody scrapes them)",
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PEM",
        help="serve HTTPS with this certificate (chain) file; needs --tls-key (env MILLWATCH_TLS_CERT_FILE)",
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        metavar="PEM",
        help="the private key of --tls-cert (env MILLWATCH_TLS_KEY_FILE)",
    )
    _add_log_level(serve)
    serve.set_defaults(handler=_serve)

    scrape = sub.add_parser(
        "scrape",
        help="run the scraper alone, writing to the database (until Ctrl-C)",
        description="Run the scraper alone: scrape every enabled machine of the inventory and write "
        "the samples and machine states to the database, until Ctrl-C or SIGTERM. On PostgreSQL any "
        "number of these processes share the fleet: each machine is leased to one live scraper, and "
        "the machines of a scraper that stops or dies are taken over by the others.",
    )
    _add_inventory_and_db(scrape)
    scrape.add_argument(
        "--lease-ttl",
        type=_positive_seconds,
        default=15.0,
        metavar="SECONDS",
        help="PostgreSQL: a scraper that stops renewing loses its machines to the others after this "
        "many seconds (renewed every third of it; default 15)",
    )
    _add_log_level(scrape)
    scrape.set_defaults(handler=_scrape)

    check = sub.add_parser(
        "check",
        help="validate an inventory file and print every problem with its line",
        description="Validate an inventory file. Prints every problem as file:line: field: message. "
        "Exit status 0 when valid, 1 when it has problems, 2 when it cannot be read.",
    )
    check.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="the inventory file (default ./machines.yaml; env MILLWATCH_INVENTORY)",
    )
    check.add_argument(
        "--notifications",
        type=Path,
        metavar="FILE",
        help="also validate this notifications file (channels, routes; see docs/alerts.md)",
    )
    check.set_defaults(handler=_check)

    rules = sub.add_parser(
        "rules",
        help="Prometheus alerting rules from the inventory (rules export)",
        description="Work with Prometheus alerting rules equivalent to the inventory's alerts.",
    )
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    export = rules_sub.add_parser(
        "export",
        help="write Prometheus alerting rules for the exporters' metrics",
        description="Write Prometheus alerting rules equivalent to the inventory's thresholds, alerts "
        "and for: durations, for a Prometheus that scrapes the exporters itself (machines are "
        "matched through machine_info's machine_id). Check them with `promtool check rules FILE`.",
    )
    export.add_argument(
        "--inventory", type=Path, help="the inventory file (default ./machines.yaml; env MILLWATCH_INVENTORY)"
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(handler=_rules_export)

    sub.add_parser(
        "simulate-serial",
        add_help=False,
        help="a simulated serial sensor on a pseudo-terminal, for demos and tests "
        "(options: millwatch simulate-serial --help)",
    )

    demo = sub.add_parser(
        "demo",
        help="a simulated fleet (real exporters on simulated serial ports) with the server",
        description="Start a simulated fleet in this process: one simulated serial sensor and one real "
        "exporter per machine, an inventory of them at factory sites around the world, and the "
        "server scraping them. Some machines are made to fail on purpose (overheating, silent or "
        "garbled sensors, an unreachable exporter, a disabled machine). Ctrl-C stops everything.",
    )
    demo.add_argument("--machines", type=_positive_int, default=50, help="number of machines (default 50)")
    demo.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address the server listens on (default {DEFAULT_HOST})"
    )
    demo.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port of the server (default {DEFAULT_PORT})"
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("millwatch-demo"),
        help="folder for the demo's inventory, database and exporter buffers "
        "(default ./millwatch-demo; its database is recreated on each run)",
    )
    demo.add_argument(
        "--interval",
        type=_duration,
        default=5.0,
        help="scrape interval of every machine: 5s, 500ms, 1m or a number of seconds (default 5s)",
    )
    _add_log_level(demo, default="warning")
    demo.set_defaults(handler=_demo)

    _add_bundle(sub)
    _add_key_commands(sub)
    _add_user_commands(sub)
    _add_token_commands(sub)
    return parser


def _add_key_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser(
        "key",
        help="machine keys for push mode: create (printed once), revoke, list",
        description="Machine keys authenticate exporters in push mode (POST /api/ingest). A key is "
        "printed once when created and stored only as its SHA-256; a key writes only its own machine.",
    )
    key_sub = key.add_subparsers(dest="key_command", metavar="KEY_COMMAND", required=True)
    create = key_sub.add_parser(
        "create",
        help="create a key for a machine and print it once",
        description="Create a key for MACHINE_ID and print it once on stdout (store it in the "
        "exporter's api_key_file). The machine should be `mode: push` in the inventory; a warning "
        "says so when it is not (its pushes are refused until it is).",
    )
    create.add_argument("machine_id", metavar="MACHINE_ID", help="the machine's id in the inventory")
    _add_inventory_and_db(create)
    create.set_defaults(handler=_key_create)
    revoke = key_sub.add_parser(
        "revoke",
        usage=f"{PROG} key revoke [-h] [--db URL] (MACHINE_ID | --id KEY_ID)",
        help="revoke every active key of a machine, or one key by its id",
        description="Revoke every active key of MACHINE_ID, or with --id the one key of that id "
        "(as `millwatch key list` shows it). Pushes with a revoked key are refused at once. "
        "Exit status 1 when no active key matches.",
    )
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "machine_id", metavar="MACHINE_ID", nargs="?", help="the machine whose keys to revoke"
    )
    target.add_argument("--id", dest="key_id", metavar="KEY_ID", help="revoke only this key (key_...)")
    _add_db(revoke)
    # Accepted and unused, so one set of options serves every key command in a script.
    revoke.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    revoke.set_defaults(handler=_key_revoke)
    listing = key_sub.add_parser(
        "list",
        help="list the keys (id, machine, created, revoked), never the keys themselves",
        description="List every machine key: its id, machine, creation and revocation time. "
        "The keys themselves are not stored and cannot be shown.",
    )
    _add_db(listing)
    # Accepted and unused, so one set of options serves every key command in a script.
    listing.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    listing.set_defaults(handler=_key_list)


def _add_user_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser(
        "user",
        help="manage the users who log in to the map page (add, list, remove, passwd)",
        description="Manage the users of the map page and API. A viewer reads (and acknowledges "
        "alerts); an admin also edits the inventory, floor plans and maintenance windows and manages "
        "users and tokens. Passwords are asked twice on a terminal, or read as one line from stdin.",
    )
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)

    def password_source(action: str) -> str:
        return (
            "The password (at least 8 characters) is asked twice on a terminal, or read as one line "
            f"from stdin for scripts: `printf '%s\\n' \"$PASSWORD\" | millwatch user {action} NAME`."
        )

    add = actions.add_parser(
        "add",
        help="add a user (password asked, or one line from stdin)",
        description=f"Add a user who logs in to the map page. {password_source('add')}",
    )
    add.add_argument("name", help="login name: letters, digits, _ . @ - (64 at most)")
    add.add_argument("--role", choices=("viewer", "admin"), default="viewer", help="role (default viewer)")
    add.set_defaults(handler=_auth_command("user_add"))
    listing = actions.add_parser("list", help="list users with role and dates")
    listing.set_defaults(handler=_auth_command("user_list"))
    remove = actions.add_parser(
        "remove",
        help="remove a user and end their sessions",
        description="Remove a user and end their sessions at once. The last admin cannot be removed.",
    )
    remove.add_argument("name", help="the user's login name")
    remove.set_defaults(handler=_auth_command("user_remove"))
    passwd = actions.add_parser(
        "passwd",
        help="set a user's password (ends their sessions)",
        description=f"Set a user's password; their sessions end at once. {password_source('passwd')}",
    )
    passwd.add_argument("name", help="the user's login name")
    passwd.set_defaults(handler=_auth_command("user_passwd"))
    for parser in (add, listing, remove, passwd):
        _add_db(parser)


def _add_token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser(
        "token",
        help="manage API tokens for scripts, Prometheus and dashboards (create, list, revoke)",
        description="Manage API tokens. A token is sent as `Authorization: Bearer <token>`; it is "
        "printed once by `create` and kept only as a hash.",
    )
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token and print it (once)")
    create.add_argument("name", help="what the token is for: letters, digits, _ . @ - (64 at most)")
    create.add_argument("--role", choices=("viewer", "admin"), default="viewer", help="role (default viewer)")
    create.set_defaults(handler=_auth_command("token_create"))
    listing = actions.add_parser("list", help="list tokens: name, role, created, last used (never the token)")
    listing.set_defaults(handler=_auth_command("token_list"))
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name", help="the token's name, as `millwatch token list` shows it")
    revoke.set_defaults(handler=_auth_command("token_revoke"))
    for parser in (create, listing, revoke):
        _add_db(parser)


def _auth_command(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from server.auth import commands

        handler: Callable[[argparse.Namespace], int] = getattr(commands, name)
        return handler(args)

    return run


def configure_logging(level: str) -> None:
    """One line per event on stderr; the per-request chatter of libraries only at debug level."""
    from server.logredact import RedactSecrets  # standard library only, like this module

    numeric = getattr(logging, level.upper())
    logging.basicConfig(
        level=numeric,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    from server.serving import run_server
    from server.settings import load_settings

    settings = load_settings(
        inventory=args.inventory,
        database_url=args.db,
        host=args.host,
        port=args.port,
        scrape=False if args.no_scrape else None,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
    )
    run_server(settings, log_level=args.log_level, on_ready=_announce_serving)
    return 0


def _announce_serving(url: str) -> None:
    print(f"{PROG}: serving {url}", flush=True)


def _scrape(args: argparse.Namespace) -> int:
    from scraper.runner import run_scrape
    from server.settings import load_settings

    settings = load_settings(inventory=args.inventory, database_url=args.db)
    return run_scrape(
        settings.inventory,
        settings.database_url,
        retention_seconds=settings.retention,
        max_concurrency=settings.max_concurrency,
        rollup_retention_seconds=settings.rollup_retention,
        minute_rollup_retention_seconds=settings.minute_rollup_retention,
        lease_ttl=args.lease_ttl,
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def _check(args: argparse.Namespace) -> int:
    from scraper.inventory import check_command
    from server.settings import load_settings

    path = args.path if args.path is not None else load_settings().inventory
    status = check_command(path)
    if args.notifications is not None:
        from scraper.alerting.config import check_notifications_command

        status = max(status, check_notifications_command(args.notifications))
    return status


def _rules_export(args: argparse.Namespace) -> int:
    from scraper.alerting.promrules import render_rules
    from scraper.inventory import load_inventory
    from server.settings import load_settings

    inventory = load_inventory(load_settings(inventory=args.inventory).inventory)
    text = render_rules(inventory)
    if args.output is None:
        sys.stdout.write(text)
    else:
        temporary = args.output.with_name(args.output.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(args.output)
        print(f"{PROG}: rules written to {args.output}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from server.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            machines=args.machines,
            host=args.host,
            port=args.port,
            directory=args.dir,
            scrape_interval=args.interval,
            log_level=args.log_level,
        )
    )


def _add_bundle(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from server.bundle_targets import PLATFORMS, PYTHON_VERSIONS

    bundle = sub.add_parser(
        "bundle",
        help="the offline machine package: one zip with the exporter's wheels and its installer",
        description="Write one zip that installs the exporter on a machine PC with no internet: the "
        "exporter's own wheel (exporter code only), its dependencies' wheels for the platform and "
        "Python version, an exporter.yaml example, INSTALL.bat/UNINSTALL.bat (Windows) or install.sh "
        "and a systemd unit (Linux). Wheels come from the package index, or from --wheels DIR alone.",
        epilog="On a host with internet, --download-to DIR fills a wheel folder that --wheels DIR can "
        "use later on an offline host. The technician's guide: docs/install-machine.md.",
    )
    bundle.add_argument("--platform", required=True, choices=PLATFORMS, help="the machine PC's platform")
    bundle.add_argument(
        "--python-version",
        required=True,
        choices=PYTHON_VERSIONS,
        help="the Python version installed on the machine PC (X.Y)",
    )
    bundle.add_argument("-o", "--output", type=Path, metavar="DIR", help="folder to write the zip into")
    source = bundle.add_mutually_exclusive_group()
    source.add_argument(
        "--wheels",
        type=Path,
        metavar="DIR",
        help="take the dependency wheels from this folder only (no network)",
    )
    source.add_argument(
        "--download-to",
        type=Path,
        metavar="DIR",
        help="instead of a zip: download the dependency wheels for --platform/--python-version into DIR",
    )
    bundle.set_defaults(handler=_bundle)


def _bundle(args: argparse.Namespace) -> int:
    from server.bundle import build_bundle, download_for_offline
    from server.bundle_targets import Target

    target = Target(args.platform, args.python_version)
    if args.download_to is not None:
        wheels = download_for_offline(target, args.download_to)
        where = f"{target.platform}, Python {target.python_version}"
        print(f"{PROG}: {len(wheels)} wheels for {where} in {args.download_to}")
        return 0
    if args.output is None:
        return _fail("bundle: give -o DIR (the folder to write the zip into) or --download-to DIR")
    result = build_bundle(target, args.output, wheels_dir=args.wheels)
    for wheel in result.wheels:
        print(f"  {wheel}")
    print(f"{PROG}: wrote {result.path} ({result.size / 1024:.0f} KiB)")
    return 0


def _key_store(args: argparse.Namespace) -> tuple[Settings, str]:
    """The settings' database, migrated (the keys' table comes with the schema), and its URL."""
    from scraper.store import Store
    from server.settings import load_settings

    settings = load_settings(inventory=args.inventory, database_url=args.db)
    store = Store(settings.database_url)
    try:
        store.migrate()
    finally:
        store.close()
    return settings, settings.database_url


def _key_create(args: argparse.Namespace) -> int:
    from scraper.errors import InventoryError
    from scraper.inventory import PUSH, load_inventory
    from server.machine_keys import KeyStore

    settings, url = _key_store(args)
    try:
        machine = load_inventory(settings.inventory).get(args.machine_id)
    except InventoryError as e:
        print(f"{PROG}: warning: cannot check the inventory {settings.inventory}: {e}", file=sys.stderr)
    else:
        if machine is None:
            print(
                f"{PROG}: warning: {args.machine_id!r} is not in {settings.inventory}: its pushes are "
                "refused until it is there with `mode: push`",
                file=sys.stderr,
            )
        elif machine.mode != PUSH:
            print(
                f"{PROG}: warning: {args.machine_id!r} is a pulled machine in {settings.inventory}: "
                "its pushes are refused until it has `mode: push`",
                file=sys.stderr,
            )
    keys = KeyStore(url)
    try:
        record, key = keys.create(args.machine_id)
    finally:
        keys.close()
    print(key)
    print(
        f"{PROG}: created {record.id} for {record.machine_id}; this is the only time the key is shown",
        file=sys.stderr,
    )
    return 0


def _key_revoke(args: argparse.Namespace) -> int:
    from server.machine_keys import KeyStore

    _, url = _key_store(args)
    keys = KeyStore(url)
    try:
        revoked = keys.revoke(machine_id=args.machine_id, key_id=args.key_id)
    finally:
        keys.close()
    for record in revoked:
        print(f"revoked {record.id} ({record.machine_id})")
    return 0


def _key_list(args: argparse.Namespace) -> int:
    import datetime

    from server.machine_keys import KeyStore

    _, url = _key_store(args)
    keys = KeyStore(url)
    try:
        records = keys.all_keys()
    finally:
        keys.close()

    def when(seconds: float | None) -> str:
        if seconds is None:
            return "-"
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    print(f"{'ID':<18} {'MACHINE':<30} {'CREATED':<21} REVOKED")
    for record in records:
        print(
            f"{record.id:<18} {record.machine_id:<30} {when(record.created_at):<21} {when(record.revoked_at)}"
        )
    return 0


def _add_inventory_and_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory",
        type=Path,
        help="the inventory file (default ./machines.yaml; env MILLWATCH_INVENTORY)",
    )
    _add_db(parser)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL (default sqlite:///./millwatch.db; PostgreSQL: "
        "postgresql+psycopg://user@host/db; env MILLWATCH_DATABASE_URL)",
    )


def _add_log_level(parser: argparse.ArgumentParser, default: str = "info") -> None:
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default, help=f"log detail on stderr (default {default})"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _duration(text: str) -> float:
    # The inventory's grammar (millwatch_common.durations, in the base install) and its bounds.
    from millwatch_common.durations import parse_seconds

    try:
        seconds = parse_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a duration such as 15s, 500ms, 2m or a number of seconds, got {text!r}"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    if seconds > MAX_INTERVAL_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most 1d, got {text!r}")
    return seconds


def _fail(message: str, details: str = "", exit_status: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if details:
        print(details, file=sys.stderr)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
