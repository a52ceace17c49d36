"""`GET /api/machines` answers kept while the fleet does not change, plain and gzip-compressed.

At 10,000 machines the answer is ~8 MB of JSON. Every wall screen and script asking within the
same fleet version gets the same bytes, so they are built (and compressed) once per version and
filter set. Only the trailing `"time"` differs per request: the plain body is the kept prefix plus
that tail; the gzip body is the kept compressed prefix plus the tail compressed by a copy of the
compressor as it stood after the prefix (`zlib` keeps the stream's state), so a request costs a
few bytes of compression, not 8 MB.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# zlib level 1: JSON still shrinks ~8x, in a fraction of level 6's time (the list is re-built
# every fleet version, i.e. about every second on a big fleet).
GZIP_LEVEL = 1
MAX_ENTRIES = 8
MAX_BYTES = 64 * 2**20  # the prefixes kept, plain + compressed, over all entries


@dataclass(frozen=True)
class _Entry:
    prefix: bytes
    gzip_head: bytes
    compressor: zlib._Compress  # after the prefix (SYNC_FLUSHed into gzip_head); copied per request
    size: int


Key = tuple[int, tuple[object, ...]]


class ListCache:
    """Answers by (fleet version, filters); the least recently used go first past the bounds."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def body(self, key: Key, build_prefix: Callable[[], str], tail: str, *, gzip: bool) -> bytes:
        """The answer: the prefix for `key` (built by `build_prefix` when not kept) + `tail`,
        gzip-compressed when `gzip`."""
        entry = self._get(key)
        if entry is None:
            entry = self._put(key, build_prefix().encode())
        if not gzip:
            return entry.prefix + tail.encode()
        compressor = entry.compressor.copy()
        return entry.gzip_head + compressor.compress(tail.encode()) + compressor.flush()

    def _get(self, key: Key) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def _put(self, key: Key, prefix: bytes) -> _Entry:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
        head = compressor.compress(prefix) + compressor.flush(zlib.Z_SYNC_FLUSH)
        entry = _Entry(prefix, head, compressor, len(prefix) + len(head))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            version = key[0]
            # An older fleet version is never asked for again.
            for old in [k for k in self._entries if k[0] < version]:
                del self._entries[old]
            while len(self._entries) > self._max_entries or (
                len(self._entries) > 1 and sum(e.size for e in self._entries.values()) > self._max_bytes
            ):
                self._entries.popitem(last=False)
        return entry
