"""What changes when a watched file is written: the one test the central host's file watchers share
(machines.yaml for the scraper, the push ingest and the alert rules; notifications.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileSignature:
    mtime_ns: int
    size: int
    inode: int  # an atomic rename (editors, the inventory API) gives the file a new inode


def signature(path: Path) -> FileSignature | None:
    """The file's signature now (None: it cannot be read now)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return FileSignature(stat.st_mtime_ns, stat.st_size, stat.st_ino)
