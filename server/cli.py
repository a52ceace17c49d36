"""The `millwatch` command of the central host: serve, scrape, check, simulate-serial, demo.

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
from collections.abc import Sequence
from pathlib import Path

PROG = "millwatch"
LOG_LEVELS = ("debug", "info", "warning", "error")
CENTRAL_COMMANDS = frozenset({"serve", "scrape", "check", "demo", "rules"})
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
        "fastapi",
        "httpcore",
        "httpx",
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
    from server.errors import ServerError

    try:
        result: int = args.handler(args)
        return result
    except KeyboardInterrupt:
        return 0  # Ctrl-C before the server took over its signals: a normal stop
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
        "(read every 2 s; machines turn stale when nobody scrapes them)",
    )
    _add_log_level(serve)
    serve.set_defaults(handler=_serve)

    scrape = sub.add_parser(
        "scrape",
        help="run the scraper alone, writing to the database (until Ctrl-C)",
        description="Run the scraper alone: scrape every enabled machine of the inventory and write "
        "the samples and machine states to the database, until Ctrl-C or SIGTERM.",
    )
    _add_inventory_and_db(scrape)
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
    return parser


def configure_logging(level: str) -> None:
    """One line per event on stderr; the per-request chatter of libraries only at debug level."""
    numeric = getattr(logging, level.upper())
    logging.basicConfig(
        level=numeric,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
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
    )


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


def _add_inventory_and_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory",
        type=Path,
        help="the inventory file (default ./machines.yaml; env MILLWATCH_INVENTORY)",
    )
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


def _fail(message: str, details: str = "") -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if details:
        print(details, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
