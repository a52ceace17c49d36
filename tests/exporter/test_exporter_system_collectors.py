"""The system collectors, one per module: exact families from a psutil-like fake, on both platforms.

The Linux path also runs against the real psutil below. The Windows path runs against a fake
psutil shaped like psutil on Windows (its cpu_times fields, drive letters, `num_handles`, the
loopback interface's name) because Windows cannot run here; `platform="win32"` selects that path.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from exporter_helpers import MakeSensor, samples, scrape, wait_until

from exporter.app import ExporterApp
from exporter.collectors.guard import GuardedCollector
from exporter.collectors.system import system_collectors
from exporter.config import CollectorsConfig, parse_config
from exporter.exposition import Registry, render

LinuxCpu = namedtuple("LinuxCpu", "user nice system idle iowait irq softirq steal guest guest_nice")
WindowsCpu = namedtuple("WindowsCpu", "user system idle interrupt dpc")
Memory = namedtuple("Memory", "total available")
Swap = namedtuple("Swap", "total used free percent sin sout")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
NetIO = namedtuple("NetIO", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout")
LinuxDiskIO = namedtuple(
    "LinuxDiskIO", "read_count write_count read_bytes write_bytes read_time write_time busy_time"
)
WindowsDiskIO = namedtuple(
    "WindowsDiskIO", "read_count write_count read_bytes write_bytes read_time write_time"
)
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

    def num_threads(self) -> int:
        return 4

    def num_fds(self) -> int:
        return 12

    def num_handles(self) -> int:
        return 140


class FakeLinuxPsutil:
    """The part of psutil the system collectors use, as on Linux, with figures a test can predict."""

    def __init__(self) -> None:
        self.cpu = [LinuxCpu(100, 0, 50, 850, 0, 0, 0, 0, 5, 0), LinuxCpu(130, 0, 70, 900, 0, 0, 0, 0, 5, 0)]

    def Process(self, pid: int | None = None) -> FakeProcess:  # noqa: N802 - psutil's name
        return FakeProcess(pid)

    def cpu_times(self) -> Any:
        return self.cpu.pop(0) if len(self.cpu) > 1 else self.cpu[0]

    def cpu_count(self, logical: bool = True) -> int:
        return 4

    def getloadavg(self) -> tuple[float, float, float]:
        return (0.5, 0.25, 0.125)

    def boot_time(self) -> float:
        return 1_700_000_000.0

    def virtual_memory(self) -> Memory:
        return Memory(8_000_000_000, 6_000_000_000)

    def swap_memory(self) -> Swap:
        return Swap(2_000, 500, 1_500, 25.0, 4096, 8192)

    def disk_partitions(self, all: bool = False) -> list[Partition]:
        return [
            Partition("/dev/sda1", "/", "ext4", "rw"),
            Partition("/dev/sda1", "/", "ext4", "rw"),  # a bind mount: once
            Partition("/dev/sdb1", "/data", "xfs", "rw"),
            Partition("tmpfs", "/dev/shm", "tmpfs", "rw"),
            Partition("overlay", "/var/lib/docker/overlay2/x/merged", "overlay", "rw"),
            Partition("/dev/loop3", "/snap/core/1", "squashfs", "ro"),
            Partition("/dev/sdc1", "/media/usb", "vfat", "rw"),  # vanished: skipped
        ]

    def disk_usage(self, path: str) -> Usage:
        if path == "/media/usb":
            raise OSError(5, "Input/output error")
        return Usage(100_000, 40_000, 60_000, 40.0)

    def disk_io_counters(self, perdisk: bool = False, nowrap: bool = True) -> dict[str, Any]:
        return {"sda": LinuxDiskIO(10, 20, 4096, 8192, 1, 2, 1500), "loop0": LinuxDiskIO(1, 1, 1, 1, 1, 1, 1)}

    def net_io_counters(self, pernic: bool = False, nowrap: bool = True) -> dict[str, NetIO]:
        return {"eth0": NetIO(2_000, 3_000, 20, 30, 1, 2, 3, 4), "lo": NetIO(10, 10, 1, 1, 0, 0, 0, 0)}


class FakeWindowsPsutil(FakeLinuxPsutil):
    """psutil's shapes on Windows (which cannot run here): other CPU modes, drives, handles."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu = [WindowsCpu(100, 50, 850, 3, 2), WindowsCpu(140, 60, 900, 3, 2)]

    def disk_partitions(self, all: bool = False) -> list[Partition]:
        return [
            Partition("C:\\", "C:\\", "NTFS", "rw,fixed"),
            Partition("D:\\", "D:\\", "", "cdrom"),  # a DVD drive without a disc
            Partition("E:\\", "E:\\", "CDFS", "ro,cdrom"),
        ]

    def swap_memory(self) -> Swap:
        return Swap(4_000, 1_000, 3_000, 25.0, 0, 0)

    def disk_io_counters(self, perdisk: bool = False, nowrap: bool = True) -> dict[str, Any]:
        return {"PhysicalDrive0": WindowsDiskIO(10, 20, 4096, 8192, 1, 2)}

    def net_io_counters(self, pernic: bool = False, nowrap: bool = True) -> dict[str, NetIO]:
        return {
            "Ethernet": NetIO(2_000, 3_000, 20, 30, 1, 2, 3, 4),
            "Loopback Pseudo-Interface 1": NetIO(10, 10, 1, 1, 0, 0, 0, 0),
        }


def collect(fake: Any, platform: str, switches: CollectorsConfig | None = None) -> dict[str, float]:
    registry = Registry()
    registry.register(GuardedCollector(system_collectors(switches, fake, platform)))
    got = samples(render(registry.collect()).decode())
    return {k: v for k, v in got.items() if not k.startswith("millwatch_collector_duration_seconds")}


NETWORK_ETH0 = {
    "system_network_receive_bytes_total": 3_000.0,
    "system_network_transmit_bytes_total": 2_000.0,
    "system_network_receive_packets_total": 30.0,
    "system_network_transmit_packets_total": 20.0,
    "system_network_receive_errors_total": 1.0,
    "system_network_transmit_errors_total": 2.0,
    "system_network_receive_drop_total": 3.0,
    "system_network_transmit_drop_total": 4.0,
}
ALL = ("boot", "cpu", "loadavg", "memory", "swap", "filesystem", "diskio", "network", "process")


def test_linux_figures() -> None:
    got = collect(FakeLinuxPsutil(), "linux")
    expected = {
        "system_boot_time_seconds": 1_700_000_000.0,
        **{
            f'system_cpu_seconds_total{{mode="{m}"}}': v
            for m, v in {
                "user": 130,
                "nice": 0,
                "system": 70,
                "idle": 900,
                "iowait": 0,
                "irq": 0,
                "softirq": 0,
                "steal": 0,
            }.items()
        },
        "system_cpu_count": 4.0,
        # busy 150 → 200 (+50) of total 1000 → 1100 (+100); guest is inside user and not counted twice
        "system_cpu_usage_ratio": 0.5,
        "system_load1": 0.5,
        "system_load5": 0.25,
        "system_load15": 0.125,
        "system_memory_total_bytes": 8e9,
        "system_memory_available_bytes": 6e9,
        "system_swap_total_bytes": 2000.0,
        "system_swap_used_bytes": 500.0,
        "system_swap_in_bytes_total": 4096.0,
        "system_swap_out_bytes_total": 8192.0,
        # tmpfs, docker overlay and the snap are pseudo file systems; /media/usb could not be read
        'system_disk_total_bytes{mountpoint="/"}': 100_000.0,
        'system_disk_total_bytes{mountpoint="/data"}': 100_000.0,
        'system_disk_free_bytes{mountpoint="/"}': 60_000.0,
        'system_disk_free_bytes{mountpoint="/data"}': 60_000.0,
        # loop0 is left out
        'system_disk_read_bytes_total{device="sda"}': 4096.0,
        'system_disk_written_bytes_total{device="sda"}': 8192.0,
        'system_disk_reads_completed_total{device="sda"}': 10.0,
        'system_disk_writes_completed_total{device="sda"}': 20.0,
        'system_disk_io_time_seconds_total{device="sda"}': 1.5,
        # lo is left out
        **{f'{name}{{interface="eth0"}}': value for name, value in NETWORK_ETH0.items()},
        "process_cpu_seconds_total": 1.75,
        "process_resident_memory_bytes": 50_000_000.0,
        "process_virtual_memory_bytes": 90_000_000.0,
        "process_start_time_seconds": 1_700_000_100.0,
        "process_threads": 4.0,
        "process_open_fds": 12.0,
        **{f'millwatch_collector_success{{collector="{name}"}}': 1.0 for name in ALL},
    }
    assert got == expected


def test_windows_figures_with_a_fake_psutil_because_windows_cannot_run_here() -> None:
    got = collect(FakeWindowsPsutil(), "win32")
    assert {k: v for k, v in got.items() if k.startswith("system_cpu_seconds")} == {
        'system_cpu_seconds_total{mode="user"}': 140.0,
        'system_cpu_seconds_total{mode="system"}': 60.0,
        'system_cpu_seconds_total{mode="idle"}': 900.0,
        'system_cpu_seconds_total{mode="interrupt"}': 3.0,
        'system_cpu_seconds_total{mode="dpc"}': 2.0,
    }
    assert got["system_cpu_usage_ratio"] == 50 / 100  # busy +50 of total +100
    assert not any(k.startswith("system_load") for k in got)  # no load average on Windows
    assert "system_swap_total_bytes" in got and "system_swap_in_bytes_total" not in got
    # The DVD drives (empty or not) are left out.
    assert [k for k in got if k.startswith("system_disk_total_bytes")] == [
        'system_disk_total_bytes{mountpoint="C:\\\\"}'
    ]
    assert got['system_disk_read_bytes_total{device="PhysicalDrive0"}'] == 4096.0
    assert not any(k.startswith("system_disk_io_time") for k in got)
    assert [k for k in got if k.startswith("system_network_receive_bytes")] == [
        'system_network_receive_bytes_total{interface="Ethernet"}'
    ]
    assert got["process_open_handles"] == 140.0 and "process_open_fds" not in got
    assert all(
        got[f'millwatch_collector_success{{collector="{name}"}}'] == 1.0 for name in ALL if name != "loadavg"
    )
    assert 'millwatch_collector_success{collector="loadavg"}' not in got


def test_each_collector_can_be_switched_off_and_all_at_once() -> None:
    got = collect(FakeLinuxPsutil(), "linux", CollectorsConfig(disabled=frozenset({"diskio", "loadavg"})))
    assert not any(k.startswith(("system_disk_read", "system_load")) for k in got)
    assert 'millwatch_collector_success{collector="diskio"}' not in got
    assert "system_memory_total_bytes" in got
    assert collect(FakeLinuxPsutil(), "linux", CollectorsConfig(system=False)) == {}


def test_a_broken_collector_is_reported_and_the_others_still_answer() -> None:
    fake = FakeLinuxPsutil()
    fake.swap_memory = lambda: (_ for _ in ()).throw(RuntimeError("no swap info"))  # type: ignore[method-assign]
    got = collect(fake, "linux")
    assert got['millwatch_collector_success{collector="swap"}'] == 0.0
    assert "system_swap_total_bytes" not in got
    assert got["system_memory_total_bytes"] == 8e9


def test_the_real_psutil_gives_plausible_figures() -> None:
    got = collect(psutil, "linux")
    assert 0.0 <= got["system_cpu_usage_ratio"] <= 1.0
    assert got["system_cpu_count"] >= 1
    assert got['system_cpu_seconds_total{mode="idle"}'] > 0
    assert got["system_memory_total_bytes"] >= got["system_memory_available_bytes"] > 0
    assert got["process_resident_memory_bytes"] > 1_000_000
    assert got["process_open_fds"] > 0
    assert not any('interface="lo"' in k for k in got)
    assert not any('mountpoint="/proc' in k or 'mountpoint="/sys' in k for k in got)
    assert all(v == 1.0 for k, v in got.items() if k.startswith("millwatch_collector_success"))


def test_exporter_yaml_switches_reach_metrics(make_sensor: MakeSensor, tmp_path: Path) -> None:
    sensor = make_sensor()
    config = parse_config(
        {
            "machine": {"id": "press_01"},
            "listen": "127.0.0.1:0",
            "serial": {"port": sensor.path},
            "buffer": {"path": str(tmp_path / "buffer.sqlite")},
            "collectors": {"system": {"diskio": False, "network": False}},
        },
        "test",
    )
    with ExporterApp(config) as app:
        got = wait_until(lambda: scrape(app.url))
        assert "system_memory_total_bytes" in got
        assert not any(k.startswith(("system_network_", "system_disk_read")) for k in got)
        assert 'millwatch_collector_success{collector="network"}' not in got
        assert got['millwatch_collector_success{collector="memory"}'] == 1.0
