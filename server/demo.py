"""`millwatch demo`: a simulated fleet and the server, in one process.

Every machine but the unreachable one gets a simulated serial sensor on a pseudo-terminal and a real
exporter (its own HTTP server on 127.0.0.1, its own buffer file) reading it. The server scrapes them
over HTTP like any fleet: nothing is injected into the database or the state. Ctrl-C or SIGTERM
stops the server, then every exporter and sensor.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ruamel.yaml import YAML

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.errors import ExporterError
from exporter.simulator import VENDOR_PATTERN, SimulatedSensor
from scraper.store import Store
from server.auth.principal import Role
from server.auth.store import AuthStore
from server.demo_fleet import DemoMachine, Scenario, inventory_document, plan_fleet
from server.errors import DemoError
from server.serving import bind_socket, run_server
from server.settings import load_settings

log = logging.getLogger(__name__)

INVENTORY_NAME = "machines.yaml"
DATABASE_NAME = "millwatch-demo.db"
BUFFERS_DIR = "buffers"
DEMO_ADMIN = "admin"
SENSOR_INTERVAL_SECONDS = 1.0
# The simulated sensors take turns in the line formats and modes the exporter reads, so the demo
# shows each of them working: (simulator options, the exporter's serial keys for them).
SENSOR_KINDS: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"line_format": "kv"}, {}),
    ({"line_format": "json"}, {"format": "json"}),
    (
        {"line_format": "csv", "csv_header": True},
        {"format": "csv", "fields": ["temperature", "pressure", "speed"]},
    ),
    ({"line_format": "vendor"}, {"format": "regex", "pattern": VENDOR_PATTERN}),
    (
        {"line_format": "kv", "poll_command": "READ"},
        {
            "mode": "poll",
            "command": "READ",
            "every": f"{SENSOR_INTERVAL_SECONDS:g}s",
            "answer_timeout": "500ms",
        },
    ),
)
# A hot machine's temperature probe reads this much too high: it shows an alarm from the first scrape.
HOT_OFFSET_CELSIUS = 40.0
_STOP_WORKERS = 64


@dataclass(frozen=True)
class DemoOptions:
    machines: int = 50
    host: str = "127.0.0.1"
    port: int = 8000
    directory: Path = Path("millwatch-demo")
    scrape_interval: float = 5.0
    log_level: str = "warning"


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or SIGTERM; returns 0 then.

    Raises DemoError (the folder would overwrite ./machines.yaml, an exporter cannot start),
    server.errors.ListenError (the port is taken; checked before anything is started) and
    whatever `run_server` raises.
    """
    directory = options.directory
    inventory = directory / INVENTORY_NAME
    if inventory.resolve() == (Path.cwd() / INVENTORY_NAME).resolve():
        raise DemoError(
            f"--dir {directory} is the current folder: the demo would overwrite ./{INVENTORY_NAME}; "
            "choose another folder"
        )
    sock = bind_socket(options.host, options.port)
    try:
        with _sigterm_as_interrupt():
            _prepare_folder(directory)
            machines = plan_fleet(options.machines)
            with DemoFleet(machines, directory / BUFFERS_DIR) as fleet:
                _write_inventory(inventory, machines, fleet.urls, options.scrape_interval)
                settings = load_settings(
                    inventory=inventory,
                    database_url=f"sqlite:///{(directory / DATABASE_NAME).resolve()}",
                    host=options.host,
                    port=options.port,
                    scrape=True,
                    # A newcomer sees the map at once, without an account (said so below).
                    anonymous_read=True,
                )
                password = _create_demo_admin(settings.database_url)

                def announce(url: str) -> None:
                    print(f"millwatch demo: {len(machines)} machines — open {url}", flush=True)
                    print(
                        "millwatch demo: anonymous read is on (MILLWATCH_ANONYMOUS_READ): anyone who "
                        "reaches this port sees the map",
                        flush=True,
                    )
                    print(f"millwatch demo: admin login for this demo: {DEMO_ADMIN} / {password}", flush=True)

                run_server(settings, sock=sock, log_level=options.log_level, on_ready=announce)
    except KeyboardInterrupt:
        pass  # stopped during start-up: everything started is already stopped
    finally:
        sock.close()
    return 0


def _create_demo_admin(database_url: str) -> str:
    """An admin user for this run of the demo (its database is new each run); returns the password."""
    password = secrets.token_urlsafe(12)
    store = Store(database_url)
    try:
        store.migrate()
        AuthStore(store).add_user(DEMO_ADMIN, Role.ADMIN, password)
    finally:
        store.close()
    return password


class DemoFleet:
    """The sensors and exporters of the demo machines, started in this process.

    `start()` starts them all (DemoError if one cannot start; what started is stopped again);
    `urls` maps every machine id to the /metrics URL to scrape. `stop()` stops everything.
    """

    def __init__(self, machines: list[DemoMachine], buffers: Path) -> None:
        self._machines = machines
        self._buffers = buffers
        self._sensors: list[SimulatedSensor] = []
        self._exporters: list[ExporterApp] = []
        self._timers: list[threading.Timer] = []
        self._placeholders: list[socket.socket] = []
        self.urls: dict[str, str] = {}

    def start(self) -> None:
        self._buffers.mkdir(parents=True, exist_ok=True)
        try:
            for index, machine in enumerate(self._machines):
                self.urls[machine.id] = self._start_machine(index, machine)
        except BaseException:
            self.stop()
            raise
        for timer in self._timers:
            timer.start()
        log.info("demo fleet of %d machines started", len(self._machines))

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        # Stopping joins threads; in parallel, Ctrl-C on a big fleet ends in about a second.
        with ThreadPoolExecutor(max_workers=_STOP_WORKERS) as pool:
            list(pool.map(lambda e: e.stop(), self._exporters))
            list(pool.map(lambda s: s.stop(), self._sensors))
        for sock in self._placeholders:
            sock.close()
        self._exporters.clear()
        self._sensors.clear()
        self._placeholders.clear()

    def __enter__(self) -> DemoFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_machine(self, index: int, machine: DemoMachine) -> str:
        if not machine.runs_exporter:
            return self._unreachable_url()
        scenario = {
            Scenario.SILENT: "silent",
            Scenario.GARBAGE: "garbage",
            Scenario.HOT: "normal",
            Scenario.OVERHEAT: "normal",  # switched to "overheat" by its timer
        }.get(machine.scenario, "normal")
        sensor_options, serial_keys = SENSOR_KINDS[index % len(SENSOR_KINDS)]
        sensor = SimulatedSensor(
            scenario=scenario, interval=SENSOR_INTERVAL_SECONDS, seed=index, **sensor_options
        )
        self._sensors.append(sensor)
        try:
            serial_port = sensor.start()
            data = self._exporter_config(machine, serial_port)
            data["serial"].update(serial_keys)
            config = parse_config(data, f"demo:{machine.id}")
            exporter = ExporterApp(config)
            self._exporters.append(exporter)
            exporter.start()
        except ExporterError as e:
            raise DemoError(f"the simulated machine {machine.id} cannot start: {e}") from e
        if machine.overheat_after is not None:
            timer = threading.Timer(machine.overheat_after, _set_scenario, args=(sensor, "overheat"))
            timer.daemon = True
            self._timers.append(timer)
        return exporter.url

    def _exporter_config(self, machine: DemoMachine, serial_port: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "machine": {"id": machine.id, "name": machine.name},
            "listen": "127.0.0.1:0",
            # The simulated sensors speak every second: a silent one is a fault after 10 s (the
            # grace the scraper gives a just-started sensor), not after the default 30 s.
            "serial": {"port": serial_port, "stale_after": "10s"},
            "buffer": {"path": str(self._buffers / f"{machine.id}.sqlite")},
        }
        if machine.scenario is Scenario.HOT:
            config["channels"] = {
                "temperature": {"metric": "machine_temperature_celsius", "offset": HOT_OFFSET_CELSIUS},
                "pressure": {"metric": "machine_pressure_bar"},
                "speed": {"metric": "machine_speed_rpm"},
            }
        return config

    def _unreachable_url(self) -> str:
        # A bound socket that never listens: connecting to it is refused, and no other program
        # can take the port while the demo runs.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._placeholders.append(sock)
        return f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"


def _set_scenario(sensor: SimulatedSensor, scenario: str) -> None:
    sensor.scenario = scenario


def _prepare_folder(directory: Path) -> None:
    """Create the demo folder; remove the last run's database and buffers (a fresh demo each run)."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        (directory / f"{DATABASE_NAME}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(directory / BUFFERS_DIR, ignore_errors=True)


def _write_inventory(path: Path, machines: list[DemoMachine], urls: dict[str, str], interval: float) -> None:
    yaml = YAML()  # round-trip mode keeps the keys in the order written
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as f:
        f.write(
            f"# Written by `millwatch demo` for {len(machines)} simulated machines; rewritten on each run.\n"
            "# The label demo_scenario says what each machine simulates.\n"
        )
        yaml.dump(inventory_document(machines, urls, interval), f)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Until the server takes over the signals, SIGTERM stops the demo as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(sig: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
