"""The exporter builds what the server's model accepts: one contract, checked from both sides."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from push_helpers import INVENTORY, stored_samples
from server_helpers import running_app
from support import wait_until

from exporter.buffer import ReadingBuffer
from exporter.collectors.summary import SystemSummary
from exporter.config import PushConfig
from exporter.push import PushClient
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.ingest_model import IngestBatch
from server.machine_keys import KeyStore
from server.settings import Settings


def test_the_push_clients_batches_are_valid_batches_for_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'millwatch.db'}"
    (tmp_path / "machines.yaml").write_text(INVENTORY)
    (tmp_path / "static").mkdir()
    store = Store(url)
    store.migrate()
    keys = KeyStore(url)
    _, key = keys.create("press")
    settings = Settings(
        static_dir=tmp_path / "static", inventory=tmp_path / "machines.yaml", database_url=url
    )
    app = create_app(settings, state=FleetState(), store=store, scraper=None, keys=keys)
    buffer = ReadingBuffer(str(tmp_path / "buffer.sqlite"), 86400.0)
    now = time.time()
    metrics = [f"machine_channel_{i}_units" for i in range(70)]  # more than one reading may hold
    buffer.append_many([(now - 5 + t, m, float(t)) for t in range(5) for m in metrics])
    system = SystemSummary(psutil)
    sent: list[dict[str, object]] = []
    try:
        with running_app(app) as base:
            push = PushClient(
                PushConfig(url=f"{base}/api/ingest", api_key_file="unused", every=0.1, batch_size=1000),
                "press",
                sensor=lambda: (True, now),
                system=lambda: system(time.time()),
            )
            original = push._post

            def recording(data: bytes) -> dict[str, object]:
                sent.append(IngestBatch.model_validate_json(data).model_dump())  # the server's own model
                return original(data)

            push._post = recording  # type: ignore[method-assign]
            push.start(buffer, key)
            try:
                wait_until(lambda: push.status().pending == 0, timeout=30, what="the buffer to be sent")
            finally:
                push.stop()
    finally:
        buffer.close()
        keys.close()
        store.close()
    assert push.status().errors_total == dict.fromkeys(push.status().errors_total, 0)
    assert len(stored_samples(url, "press")) == 5 * 70
    batch = sent[0]
    assert isinstance(batch["system"], dict) and batch["system"]["uptime_seconds"] is not None
    readings = batch["readings"]
    assert isinstance(readings, list) and all(len(r["values"]) <= 64 for r in readings)
