"""Collectors with injected fakes: exact families, staleness, and failures that never break a scrape."""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Iterable, Iterator
from typing import Any

from exporter_helpers import samples
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from exporter.collectors.guard import GuardedCollector
from exporter.collectors.info import InfoCollector
from exporter.collectors.serial import SerialCollector
from exporter.collectors.system import SystemCollector
from exporter.config import DEFAULT_CHANNELS, ChannelConfig
from exporter.serial_reader import REASONS, ReaderStatus, is_fresh

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
Memory = namedtuple("Memory", "total available")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
NetIO = namedtuple("NetIO", "bytes_sent bytes_recv")
ProcCpu = namedtuple("ProcCpu", "user system children_user children_system")
MemInfo = namedtuple("MemInfo", "rss vms")


class FakeProcess:
    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    @contextlib.contextmanager
    def oneshot(self) -> Iterator[None]:
        yield

    def cpu_times(self) -> ProcCpu:
        return ProcCpu(1.25, 0.5, 0.0, 0.0)

    def memory_info(self) -> MemInfo:
        return MemInfo(50_000_000, 90_000_000)

    def create_time(self) -> float:
        return 1_700_000_100.0


class FakePsutil:
    """The part of psutil the system collector uses, with figures a test can predict."""

    def __init__(self) -> None:
        self.cpu = [CpuTimes(100, 0, 50, 850, 0, 0, 0, 0, 5, 0), CpuTimes(130, 0, 70, 900, 0, 0, 0, 0, 5, 0)]
        self.broken_disk = "/media/cdrom"

    def Process(self, pid: int | None = None) -> FakeProcess:  # noqa: N802 - psutil's name
        return FakeProcess(pid)

    def cpu_times(self) -> CpuTimes:
        return self.cpu.pop(0) if len(self.cpu) > 1 else self.cpu[0]

    def boot_time(self) -> float:
        return 1_700_000_000.0

    def virtual_memory(self) -> Memory:
        return Memory(8_000_000_000, 6_000_000_000)

    def disk_partitions(self, all: bool = False) -> list[Partition]:
        return [
            Partition("/dev/sda1", "/", "ext4", "rw"),
            Partition("/dev/sr0", self.broken_disk, "iso9660", "ro"),
            Partition("/dev/sda1", "/", "ext4", "rw"),
            Partition("C:\\", "C:\\", "NTFS", "rw"),
        ]

    def disk_usage(self, path: str) -> Usage:
        if path == self.broken_disk:
            raise PermissionError(13, "no disc in drive")
        return Usage(100_000, 40_000, 60_000, 40.0)

    def net_io_counters(self, pernic: bool = False) -> dict[str, NetIO]:
        return {"eth0": NetIO(2_000, 3_000), "lo": NetIO(10, 10)}


def exposition(*collectors: Any) -> dict[str, float]:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return samples(generate_latest(registry).decode())


def test_system_collector_reports_psutil_figures() -> None:
    got = exposition(SystemCollector(FakePsutil()))
    assert got == {
        "system_boot_time_seconds": 1_700_000_000.0,
        # busy 150 → 200 (+50) of total 1000 → 1100 (+100); guest is inside user and not counted twice
        "system_cpu_usage_ratio": 0.5,
        "system_memory_total_bytes": 8e9,
        "system_memory_available_bytes": 6e9,
        'system_disk_total_bytes{mountpoint="/"}': 100_000.0,
        'system_disk_total_bytes{mountpoint="C:\\\\"}': 100_000.0,
        'system_disk_free_bytes{mountpoint="/"}': 60_000.0,
        'system_disk_free_bytes{mountpoint="C:\\\\"}': 60_000.0,
        'system_network_receive_bytes_total{interface="eth0"}': 3_000.0,
        'system_network_receive_bytes_total{interface="lo"}': 10.0,
        'system_network_transmit_bytes_total{interface="eth0"}': 2_000.0,
        'system_network_transmit_bytes_total{interface="lo"}': 10.0,
        "process_cpu_seconds_total": 1.75,
        "process_resident_memory_bytes": 50_000_000.0,
        "process_start_time_seconds": 1_700_000_100.0,
    }


def test_cpu_ratio_keeps_its_last_figure_when_no_time_passed() -> None:
    fake = FakePsutil()
    collector = SystemCollector(fake)
    assert exposition(collector)["system_cpu_usage_ratio"] == 0.5
    assert exposition(collector)["system_cpu_usage_ratio"] == 0.5  # same cpu_times again: no division by zero


def test_the_real_psutil_gives_plausible_figures() -> None:
    got = exposition(SystemCollector())
    assert 0.0 <= got["system_cpu_usage_ratio"] <= 1.0
    assert got["system_memory_total_bytes"] >= got["system_memory_available_bytes"] > 0
    assert got["process_resident_memory_bytes"] > 1_000_000
    assert any(name.startswith("system_disk_total_bytes{") for name in got)


class FakeReader:
    def __init__(self, status: ReaderStatus) -> None:
        self.current = status

    def status(self) -> ReaderStatus:
        return self.current


def reader_status(
    *,
    connected: bool = True,
    latest: dict[str, tuple[float, float]] | None = None,
    errors: dict[str, int] | None = None,
    stale_after: float = 10.0,
) -> ReaderStatus:
    latest = latest or {}
    return ReaderStatus(
        port="/dev/ttyUSB0",
        connected=connected,
        readings_total=7,
        errors_total={**dict.fromkeys(REASONS, 0), **(errors or {})},
        last_reading_time=max((t for _, t in latest.values()), default=None),
        latest=latest,
        last_error=None,
        stale_after=stale_after,
    )


def test_serial_collector_exports_fresh_channels_scaled() -> None:
    channels = (
        *DEFAULT_CHANNELS,
        ChannelConfig("humidity", "machine_humidity_ratio", scale=0.01, offset=0.0),
    )
    reader = FakeReader(
        reader_status(
            latest={
                "temperature": (72.5, 995.0),
                "pressure": (1.02, 980.0),  # older than stale_after (10 s): not exported
                "humidity": (40.0, 999.0),
                "vibration": (3.0, 999.0),  # no channel: not exported
            },
            errors={"parse": 2},
        )
    )
    got = exposition(SerialCollector(reader, channels, clock=lambda: 1000.0))
    assert got == {
        "machine_temperature_celsius": 72.5,
        "machine_humidity_ratio": 0.4,
        "millwatch_serial_up": 1.0,
        "millwatch_serial_stale_after_seconds": 10.0,
        "millwatch_serial_start_time_seconds": 1000.0,
        "millwatch_serial_readings_total": 7.0,
        **{f'millwatch_serial_errors_total{{reason="{r}"}}': (2.0 if r == "parse" else 0.0) for r in REASONS},
        "millwatch_serial_last_reading_timestamp_seconds": 999.0,
    }


def test_serial_up_needs_an_open_port_and_a_fresh_reading() -> None:
    fresh = {"temperature": (70.0, 999.0)}
    cases = [
        (reader_status(connected=True, latest=fresh), 1000.0, 1.0),
        (reader_status(connected=True, latest=fresh), 1010.0, 0.0),  # stale
        (reader_status(connected=False, latest=fresh), 1000.0, 0.0),  # port closed
        (reader_status(connected=True, latest={}), 1000.0, 0.0),  # never read anything
    ]
    for status, now, up in cases:
        got = exposition(SerialCollector(FakeReader(status), DEFAULT_CHANNELS, clock=lambda now=now: now))
        assert got["millwatch_serial_up"] == up, (status, now)
    empty = exposition(SerialCollector(FakeReader(reader_status(latest={})), DEFAULT_CHANNELS))
    assert "millwatch_serial_last_reading_timestamp_seconds" not in empty
    assert not any(name.startswith("machine_") for name in empty)


def test_freshness_is_one_rule_with_the_readers_stale_after() -> None:
    assert is_fresh(990.0, 1000.0, 10.0), "exactly stale_after old is still fresh"
    assert not is_fresh(989.9, 1000.0, 10.0)
    assert not is_fresh(None, 1000.0, 10.0), "nothing read yet is never fresh"
    status = reader_status(latest={"temperature": (70.0, 990.0), "speed": (1480.0, 999.0)}, stale_after=5.0)
    assert status.fresh_value("temperature", 1000.0) is None
    assert status.fresh_value("speed", 1000.0) == 1480.0
    assert status.fresh_value("pressure", 1000.0) is None
    assert status.up(1000.0) and not status.up(1004.1)
    # The collector follows the status's own stale_after, not a second copy of it.
    for stale_after, expected in (
        (5.0, {"machine_speed_rpm"}),
        (60.0, {"machine_speed_rpm", "machine_temperature_celsius"}),
    ):
        current = reader_status(latest=dict(status.latest), stale_after=stale_after)
        got = exposition(SerialCollector(FakeReader(current), DEFAULT_CHANNELS, clock=lambda: 1000.0))
        assert {name for name in got if name.startswith("machine_")} == expected


def test_info_collector() -> None:
    got = exposition(InfoCollector("ironcast_berlin", 'IronCast "Berlin"', "1.2.3"))
    assert got == {
        'machine_info{machine_id="ironcast_berlin",name="IronCast \\"Berlin\\""}': 1.0,
        'millwatch_exporter_build_info{version="1.2.3"}': 1.0,
    }


class Broken:
    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("half_written", "never shown", value=1.0)
        raise OSError("psutil exploded")


def test_a_failing_collector_is_reported_not_fatal() -> None:
    ticks = iter([0.0, 0.25, 1.0, 1.5])
    guarded = GuardedCollector(
        {"info": InfoCollector("m", "M", "1"), "system": Broken()}, timer=lambda: next(ticks)
    )
    got = exposition(guarded)
    assert got['machine_info{machine_id="m",name="M"}'] == 1.0
    assert "half_written" not in got, "a failed collector contributes nothing, not half its output"
    assert got['millwatch_collector_success{collector="info"}'] == 1.0
    assert got['millwatch_collector_success{collector="system"}'] == 0.0
    assert got['millwatch_collector_duration_seconds{collector="info"}'] == 0.25
    assert got['millwatch_collector_duration_seconds{collector="system"}'] == 0.5
