"""Status changes to every `millwatch serve --no-scrape` through PostgreSQL LISTEN/NOTIFY.

The store writer sends `NOTIFY millwatch_views` after each write that saved machine views; a
server without scraper LISTENs on its own connection and reads the views again at once, instead
of polling the table. PostgreSQL delivers a notification only when the writing transaction has
committed, and folds identical ones sent in one transaction, so a burst of writes costs a few
reads. SQLite has no such thing: there, the follower keeps polling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from scraper.store import Store

log = logging.getLogger(__name__)

CHANNEL = "millwatch_views"
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0


def notify_views(store: Store) -> None:
    """Tell the listeners that machine views changed (PostgreSQL; nothing on SQLite).

    Raises SQLAlchemyError.
    """
    if store.dialect != "postgresql":
        return
    with store.engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class ViewListener:
    """A daemon thread that LISTENs on its own PostgreSQL connection and calls `on_notify()`.

    `on_notify` is also called after every (re)connection, since notifications sent while the
    connection was down are lost: the caller then reads everything again. `connected` says
    whether the thread is listening now. `stop()` ends the thread within about a second.
    """

    def __init__(self, store: Store, on_notify: Callable[[], None], *, poll_seconds: float = 1.0) -> None:
        if store.dialect != "postgresql":
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL")
        self._conninfo = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_notify = on_notify
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="millwatch-listen", daemon=True)
        self.connected = False
        self.notifications_total = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._poll + 2)

    def _run(self) -> None:
        import psycopg  # the postgres extra; only here, where PostgreSQL is in use

        backoff = RECONNECT_MIN_SECONDS
        last_error: str | None = None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.connected = True
                    backoff = RECONNECT_MIN_SECONDS
                    if last_error is not None:
                        log.info("listening for status changes again")
                    last_error = None
                    self._on_notify()  # whatever changed while not listening
                    while not self._stop.is_set():
                        # Back at the first notification (the caller gathers bursts), or after
                        # `poll` seconds to look at the stop flag.
                        got = sum(1 for _ in connection.notifies(timeout=self._poll, stop_after=1))
                        if got:
                            self.notifications_total += got
                            self._on_notify()
            except psycopg.Error as e:
                self.connected = False
                text = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
                if text != last_error:
                    log.error("not listening for status changes (reading them every few seconds): %s", text)
                last_error = text
                self._stop.wait(backoff)
                backoff = min(RECONNECT_MAX_SECONDS, backoff * 2)
        self.connected = False
