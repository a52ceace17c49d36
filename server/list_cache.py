"""`GET /api/machines` answers kept while the fleet does not change, plain and gzip-compressed.

At 10,000 machines the answer is ~8 MB of JSON. Every wall screen and script asking within the
same fleet version gets the same bytes, so they are built (and compressed) once per version and
filter set. Only the trailing `"time"` differs per request: the plain body is the kept prefix plus
that tail; the gzip body is the kept compressed prefix plus the tail compressed on its own.

The prefix is compressed in pieces of `PIECE_BYTES`, each by its own compressor (in threads: zlib
lets go of the GIL while it works, so a 2-core host compresses two at once). A raw deflate
stream may be cut after any sync flush and continued by blocks that refer to nothing before
them, so the pieces, then the tail (finished with the final block), put end to end are one valid
deflate stream; the gzip header and trailer (CRC-32 and length of the whole) are written here.
Each piece starts without the earlier text as dictionary, which costs well under 1 % of the size
at this piece size, and the tail costs a request a few bytes of compression, not 8 MB.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# zlib level 1: JSON still shrinks ~8x, in a fraction of level 6's time (the list is re-built
# every fleet version, i.e. about every second on a big fleet).
GZIP_LEVEL = 1
PIECE_BYTES = 1 << 20
COMPRESS_THREADS = 2
MAX_ENTRIES = 8
MAX_BYTES = 64 * 2**20  # the prefixes kept, plain + compressed, over all entries

# Magic, deflate, no flags, no modification time, no extra flags, OS "unknown" (RFC 1952).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

_compressing = ThreadPoolExecutor(COMPRESS_THREADS, thread_name_prefix="millwatch-gzip")


def _deflate_piece(piece: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw: no header
    return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)


def deflate_pieces(data: bytes, piece_bytes: int = PIECE_BYTES) -> bytes:
    """`data` as raw deflate blocks, not finished (no final block), compressed piece by piece."""
    pieces = [data[i : i + piece_bytes] for i in range(0, len(data), piece_bytes)]
    if len(pieces) <= 1:
        return _deflate_piece(data)
    return b"".join(_compressing.map(_deflate_piece, pieces))


def finish_gzip(head: bytes, crc: int, size: int, tail: bytes) -> bytes:
    """A gzip member from the unfinished deflate blocks `head` (of data with CRC-32 `crc` and
    length `size`) followed by `tail`."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    end = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    trailer = struct.pack("<II", zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF)
    return GZIP_HEADER + head + end + trailer


@dataclass(frozen=True)
class _Entry:
    prefix: bytes
    deflated: bytes  # the prefix as raw deflate blocks, not finished
    crc: int  # CRC-32 of the prefix
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

    def body(self, key: Key, build_prefix: Callable[[], bytes], tail: str, *, gzip: bool) -> bytes:
        """The answer: the prefix for `key` (built by `build_prefix` when not kept) + `tail`,
        gzip-compressed when `gzip`."""
        entry = self._get(key)
        if entry is None:
            entry = self._put(key, build_prefix())
        if not gzip:
            return entry.prefix + tail.encode()
        return finish_gzip(entry.deflated, entry.crc, len(entry.prefix), tail.encode())

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
        deflated = deflate_pieces(prefix)
        entry = _Entry(prefix, deflated, zlib.crc32(prefix), len(prefix) + len(deflated))
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
