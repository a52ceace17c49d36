"""File systems: `system_disk_total_bytes{mountpoint}`, `system_disk_free_bytes{mountpoint}`.

Only real storage is reported, as node_exporter does by default. On Linux pseudo and virtual file
systems (tmpfs, proc, overlay, squashfs snaps, ...) and the mount points under /proc, /sys, /dev,
/run and container storage are left out. On Windows, drives without a file system (an empty card
reader) and CD/DVD drives are left out. A file system that cannot be read (a vanished mount) is
skipped; the same mount point listed twice (bind mounts) is reported once.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from exporter.exposition import GaugeMetricFamily, Metric

PSEUDO_FILE_SYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
        "efivarfs", "fuse.lxcfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc",
        "procfs", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
        "tracefs", "udf",
    }
)  # fmt: skip
_EXCLUDED_MOUNTS = re.compile(
    r"^/(dev|proc|sys|run|var/lib/docker/.+|var/lib/containers/storage/.+|snap/.+)($|/)"
)


def is_real_file_system(partition: Any, platform: str) -> bool:
    """Whether a psutil disk partition is storage a technician cares about (see the module doc)."""
    fstype = str(partition.fstype or "").lower()
    if platform.startswith("win"):
        return bool(fstype) and "cdrom" not in str(partition.opts or "").lower()
    return fstype not in PSEUDO_FILE_SYSTEMS and not _EXCLUDED_MOUNTS.match(str(partition.mountpoint))


MOUNTS_REFRESH_SECONDS = 30.0


class FilesystemCollector:
    """Sizes are read at every scrape; the list of mount points at most every MOUNTS_REFRESH_SECONDS.

    Listing the mounts (psutil reads /proc/filesystems and the mount table on Linux) cost more than
    all the sizes together, for a list that changes when a disk is plugged in: such a disk shows
    within 30 s, and one that goes away is skipped at once (its size cannot be read).
    """

    def __init__(
        self, psutil_module: Any, platform: str = sys.platform, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._psutil = psutil_module
        self._platform = platform
        self._clock = clock
        self._lock = threading.Lock()
        self._mountpoints: list[str] = []
        self._listed_at: float | None = None

    def collect(self) -> Iterable[Metric]:
        total = GaugeMetricFamily(
            "system_disk_total_bytes", "Size of the file system, in bytes.", labels=["mountpoint"]
        )
        free = GaugeMetricFamily(
            "system_disk_free_bytes", "Free space on the file system, in bytes.", labels=["mountpoint"]
        )
        for mountpoint in self._real_mountpoints():
            try:
                usage = self._psutil.disk_usage(mountpoint)
            except (OSError, RuntimeError):
                continue
            total.add_metric([mountpoint], float(usage.total))
            free.add_metric([mountpoint], float(usage.free))
        yield total
        yield free

    def _real_mountpoints(self) -> list[str]:
        now = self._clock()
        with self._lock:
            if self._listed_at is not None and now - self._listed_at < MOUNTS_REFRESH_SECONDS:
                return self._mountpoints
        mountpoints: list[str] = []
        for partition in self._psutil.disk_partitions(all=False):
            mountpoint = str(partition.mountpoint)
            if mountpoint not in mountpoints and is_real_file_system(partition, self._platform):
                mountpoints.append(mountpoint)
        with self._lock:
            self._mountpoints, self._listed_at = mountpoints, now
        return mountpoints
