"""Push mode on the server: a machine's batch, authenticated by its key, into the store and the map.

`IngestService.ingest` runs the checks in the order that costs a caller the least and the server
the least: the key (401), the machine it belongs to (403: not in the inventory, not `mode: push`,
disabled), the body read with its size bound (413), the body's shape (422), the machine the body
names (403 when it is not the key's). Then every reading is written through the store's public
`write` (idempotent on series and time: a batch sent twice is stored once) together with the
machine's new view, and the view goes to the fleet state, so the live map hears of it as of a
scrape. Nothing is acknowledged before it is in the database.

Every batch and sample is counted by result for the server's `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pydantic import ValidationError

from millwatch_common.push_wire import MAX_BODY_BYTES, MAX_CLOCK_AHEAD_SECONDS
from scraper.errors import InventoryError, StoreError
from scraper.exposition import Sample
from scraper.file_signature import FileSignature, signature
from scraper.inventory import PUSH, Inventory, Machine, load_inventory
from scraper.state import FleetState, SystemSummary
from scraper.status import evaluate_push, format_age
from scraper.store import SampleBatch, Store
from server.ingest_model import IngestAnswer, IngestBatch
from server.machine_keys import KeyStore

log = logging.getLogger(__name__)

_MAX_ERRORS_SHOWN = 5


class IngestRefused(Exception):
    """A batch refused: the HTTP status, a short `reason` (the metrics' label) and the detail shown."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        self.status = status
        self.reason = reason
        self.detail = detail
        super().__init__(f"{status} {reason}: {detail}")


class InventorySource:
    """The current inventory: the scraper's when this process scrapes, else the file, reloaded on change.

    A file that turns invalid keeps the last good inventory (as the scraper does).
    """

    def __init__(self, path: Path, scraper_inventory: Callable[[], Inventory | None] | None) -> None:
        self._path = path
        self._scraper_inventory = scraper_inventory
        self._lock = threading.Lock()
        self._inventory: Inventory | None = None
        self._signature: FileSignature | None = None

    def current(self) -> Inventory | None:
        """The inventory to check machines against (None: none could be loaded yet). Blocking I/O."""
        if self._scraper_inventory is not None:
            return self._scraper_inventory()
        now_signature = signature(self._path)
        if now_signature is None:
            return self._inventory
        with self._lock:
            if now_signature != self._signature:
                self._signature = now_signature
                try:
                    self._inventory = load_inventory(self._path)
                except InventoryError as e:
                    log.error("ingest: inventory not reloaded, keeping the last good one:\n%s", e)
            return self._inventory


class IngestCounters:
    """Batches and samples by result; read by the server's metrics collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: Counter[str] = Counter()
        self.samples: Counter[str] = Counter()

    def count(self, batch_result: str, **samples: int) -> None:
        with self._lock:
            self.batches[batch_result] += 1
            for result, number in samples.items():
                if number:
                    self.samples[result] += number

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.batches), dict(self.samples)


class IngestService:
    """Takes push batches into `store` and `state`; see the module docstring for the order of checks."""

    def __init__(
        self,
        keys: KeyStore,
        store: Store | None,
        state: FleetState,
        inventory: InventorySource,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._store = store
        self._state = state
        self._inventory = inventory
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self.counters = IngestCounters()

    async def ingest(
        self, authorization: str | None, content_length: str | None, body: AsyncIterator[bytes]
    ) -> IngestAnswer:
        """Check and store one batch; raises IngestRefused (counted) for every refusal."""
        try:
            machine = await self._authorize(authorization)
            raw = await read_bounded(body, content_length, self._max_body_bytes)
            batch = self._parse(raw)
            if batch.machine_id != machine.id:
                raise IngestRefused(
                    403,
                    "other_machine",
                    f"this key writes only machine {machine.id!r}, not {batch.machine_id!r}",
                )
            return await self._store_batch(machine, batch)
        except IngestRefused as e:
            self.counters.count(e.reason)
            raise

    async def _authorize(self, authorization: str | None) -> Machine:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise IngestRefused(401, "unauthorized", "a machine key is needed: Authorization: Bearer mwk_...")
        try:
            record = await asyncio.to_thread(self._keys.authenticate, key.strip())
            inventory = await asyncio.to_thread(self._inventory.current)
        except StoreError as e:
            log.warning("ingest: cannot check a machine key: %s", e)
            raise IngestRefused(503, "unavailable", "the database cannot be reached; try again later") from e
        if record is None:
            raise IngestRefused(401, "unauthorized", "unknown or revoked machine key")
        if inventory is None:
            raise IngestRefused(503, "unavailable", "the inventory cannot be read; try again later")
        machine = inventory.get(record.machine_id)
        if machine is None:
            raise IngestRefused(403, "not_push", f"machine {record.machine_id!r} is not in the inventory")
        if machine.mode != PUSH:
            raise IngestRefused(
                403, "not_push", f"machine {machine.id!r} is not `mode: push` in the inventory"
            )
        if not machine.enabled:
            raise IngestRefused(403, "disabled", f"machine {machine.id!r} is disabled in the inventory")
        return machine

    def _parse(self, raw: bytes) -> IngestBatch:
        try:
            batch = IngestBatch.model_validate_json(raw)
        except ValidationError as e:
            problems = [
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in e.errors(include_url=False, include_input=False)
            ]
            more = len(problems) - _MAX_ERRORS_SHOWN
            detail = "; ".join(problems[:_MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
            raise IngestRefused(422, "invalid", detail) from None
        ahead = max((r.time for r in batch.readings), default=0.0) - self._clock()
        if ahead > MAX_CLOCK_AHEAD_SECONDS:
            raise IngestRefused(
                422,
                "clock_ahead",
                f"a reading is {format_age(ahead)} ahead of the server's clock "
                f"(at most {format_age(MAX_CLOCK_AHEAD_SECONDS)}): set the machine PC's clock",
            )
        return batch

    async def _store_batch(self, machine: Machine, batch: IngestBatch) -> IngestAnswer:
        started = time.perf_counter()
        received_at = self._clock()
        batches = [
            SampleBatch(machine.id, r.time, [Sample(name, {}, value) for name, value in r.values.items()])
            for r in batch.readings
            if r.values
        ]
        samples = sum(len(b.samples) for b in batches)
        newest: dict[str, tuple[float, float]] = {}
        for reading in batch.readings:
            for name, value in reading.values.items():
                if name not in newest or reading.time >= newest[name][0]:
                    newest[name] = (reading.time, value)
        system = SystemSummary(**batch.system.model_dump())
        view = evaluate_push(
            machine,
            self._state.get(machine.id),
            {name: value for name, (_, value) in newest.items()},
            batch.serial.up,
            batch.serial.last_reading_time,
            system,
            received_at,
            time.perf_counter() - started,
            samples=samples,
        )
        stored = 0
        if self._store is not None:
            try:
                stored = await asyncio.to_thread(self._store.write, batches, [view], operation="ingest")
            except StoreError as e:
                log.warning("ingest: batch %s of %s not stored: %s", batch.batch_id, machine.id, e)
                raise IngestRefused(
                    503, "store_error", "the database cannot be written; try again later"
                ) from e
        self._state.put([view])
        self.counters.count("accepted", stored=stored, duplicate=samples - stored)
        return IngestAnswer(
            machine_id=machine.id,
            batch_id=batch.batch_id,
            sequence=batch.sequence,
            readings=len(batch.readings),
            samples=samples,
            stored=stored,
            duplicates=samples - stored,
        )


async def read_bounded(body: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes.

    A declared Content-Length above the limit is refused before reading; a body that grows past it
    while streaming (chunked, or a lying length) is refused at the chunk that crosses it.
    """
    too_large = IngestRefused(413, "too_large", f"the body is larger than {limit} bytes")
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise IngestRefused(400, "invalid", "bad Content-Length") from None
        if declared > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
