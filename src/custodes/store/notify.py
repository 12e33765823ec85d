"""Telling the other API workers that share this database what just changed.

Several ``custodes serve`` workers on one PostgreSQL database each keep state in memory
that another worker's write makes stale: the kill-order streams of their subscribers,
a short cache of signer keys and agent statuses. ``PgBus`` carries small JSON messages
between them with PostgreSQL ``LISTEN``/``NOTIFY``: ``tell`` sends one on a channel,
every *other* worker's handlers for that channel receive it (the sender acts on its own
change directly, without the round trip).

A notification is delivered at most once and only to a connected listener, so the bus
is a doorbell, not the record: after (re)connecting, and every ``resync_every`` seconds,
each worker runs its ``on_resync`` handlers, which catch up from the database (for kill
orders, every order logged since the last one it pushed). A message lost while a
listener was away therefore arrives late, never not at all.

``Bus`` (the base) is the single-process case, SQLite's: nobody else to tell.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

__all__ = ["Bus", "PgBus", "bus_for", "postgres_conninfo"]

log = logging.getLogger("custodes.store.notify")

Handler = Callable[[dict[str, Any]], None]
# PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more.
MAX_PAYLOAD = 7_900
# Every listener also listens here; ``stop`` rings it to wake its own listener at once.
_CONTROL = "custodes_bus"


class Bus:
    """Messages between the processes that share one database; here, only this one."""

    def __init__(self) -> None:
        self.worker = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._handlers: dict[str, list[Handler]] = {}
        self._resync: list[Callable[[], None]] = []

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler(message)`` for each message another worker sends on ``channel``."""
        self._handlers.setdefault(channel, []).append(handler)

    def on_resync(self, handler: Callable[[], None]) -> None:
        """Call ``handler()`` after (re)connecting and periodically: catch up from the DB."""
        self._resync.append(handler)

    def tell(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the other workers (none here)."""

    def start(self) -> None:
        """Start listening (nothing to listen to here)."""

    def stop(self) -> None:
        """Stop listening."""

    # -- delivery (the listener's thread) ---------------------------------------------
    def deliver(self, channel: str, payload: str) -> None:
        """Hand one received notification to ``channel``'s handlers, unless it is ours."""
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignored a malformed notification on %s", channel)
            return
        if not isinstance(message, dict) or message.get("from") == self.worker:
            return
        for handler in self._handlers.get(channel, []):
            try:
                handler(message)
            except Exception:  # one bad handler must not silence the others
                log.exception("a handler for %s failed", channel)

    def resync(self) -> None:
        for handler in self._resync:
            try:
                handler()
            except Exception:  # a transient database error: the next resync retries
                log.exception("catching up from the database failed")


class PgBus(Bus):
    """``LISTEN`` on a dedicated connection in a thread; ``NOTIFY`` through the pool."""

    def __init__(self, engine: Engine, *, resync_every: float = 5.0, retry: float = 1.0) -> None:
        super().__init__()
        self._engine = engine
        self._conninfo = postgres_conninfo(engine)
        self._resync_every = resync_every
        self._retry = retry
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)

    def tell(self, channel: str, message: dict[str, Any]) -> None:
        payload = json.dumps({**message, "from": self.worker}, separators=(",", ":"))
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a notification on {channel} is over {MAX_PAYLOAD} bytes")
        try:
            with self._engine.begin() as conn:
                conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})
        except DBAPIError as exc:
            # The change itself is committed; the others catch up at their next resync.
            log.warning("could not notify the other workers on %s: %s", channel, exc.orig)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            if self.listening.is_set():
                self.tell(_CONTROL, {})  # wakes our listener, which then sees the stop
            self._thread.join(timeout=self._resync_every + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("lost the notification connection (%s); reconnecting", exc)
            finally:
                self.listening.clear()
            self._stop.wait(self._retry)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, application_name=f"custodes bus {os.getpid()}"
        ) as conn:
            for channel in [_CONTROL, *self._handlers]:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.listening.set()
            while not self._stop.is_set():
                self.resync()  # what was sent while we were not listening
                for note in conn.notifies(timeout=self._resync_every):
                    self.deliver(note.channel, note.payload)
                    if self._stop.is_set():
                        return


def postgres_conninfo(engine: Engine) -> str:
    """A libpq connection string for ``engine``'s PostgreSQL database."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def bus_for(engine: Engine) -> Bus:
    """The bus for ``engine``: LISTEN/NOTIFY on PostgreSQL, nobody to tell on SQLite."""
    return PgBus(engine) if engine.dialect.name == "postgresql" else Bus()
