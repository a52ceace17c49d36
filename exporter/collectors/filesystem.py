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
from collections.abc import Iterable
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


class FilesystemCollector:
    def __init__(self, psutil_module: Any, platform: str = sys.platform) -> None:
        self._psutil = psutil_module
        self._platform = platform

    def collect(self) -> Iterable[Metric]:
        total = GaugeMetricFamily(
            "system_disk_total_bytes", "Size of the file system, in bytes.", labels=["mountpoint"]
        )
        free = GaugeMetricFamily(
            "system_disk_free_bytes", "Free space on the file system, in bytes.", labels=["mountpoint"]
        )
        seen: set[str] = set()
        for partition in self._psutil.disk_partitions(all=False):
            mountpoint = str(partition.mountpoint)
            if mountpoint in seen or not is_real_file_system(partition, self._platform):
                continue
            try:
                usage = self._psutil.disk_usage(mountpoint)
            except (OSError, RuntimeError):
                continue
            seen.add(mountpoint)
            total.add_metric([mountpoint], float(usage.total))
            free.add_metric([mountpoint], float(usage.free))
        yield total
        yield free
