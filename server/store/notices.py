"""Event notices between replicas on PostgreSQL.

A replica that stores events of a session says so on the `sre_events` channel (NOTIFY, in
the same transaction: the notice is sent when they are committed, never before), and
every replica LISTENs on a connection of its own. So the event stream of a session that
another replica runs follows its events as they are stored, where it would otherwise read
the database again every second. While the listening connection is down, streams poll as
before, and once it is back every watched stream reads again (nothing sent meanwhile is
missed). SQLite has no such channel: there, streams poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from server.retries import wait_after

log = logging.getLogger(__name__)

CHANNEL = "sre_events"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', sid) FROM unnest(CAST(:ids AS text[])) AS sid"


async def notify(conn: AsyncConnection, session_ids: Collection[str]) -> None:
    """Announce, in `conn`'s transaction, that events of `session_ids` were stored."""
    if session_ids and conn.dialect.name == "postgresql":
        await conn.execute(text(_NOTIFY), {"ids": sorted(session_ids)})


class Watch:
    """One event stream's interest in one session: `clear()` before reading the database,
    then `wait(at_most)` returns at the next notice for the session, or after `at_most`
    seconds."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def clear(self) -> None:
        self._event.clear()

    def set(self) -> None:
        self._event.set()

    async def wait(self, at_most: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._event.wait()


class EventNotices:
    """Listens on `sre_events` (PostgreSQL) and wakes the streams watching a session."""

    def __init__(self, url: URL, *, connect_timeout: float = 5.0) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._watches: dict[str, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while the channel is listened to

    @classmethod
    def for_url(cls, url: URL) -> EventNotices | None:
        """Notices for a database that has them (PostgreSQL), else None."""
        return cls(url) if url.get_backend_name() == "postgresql" else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="event-notices")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.contextmanager
    def watch(self, session_id: str) -> Iterator[Watch]:
        watch = Watch()
        self._watches.setdefault(session_id, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watches.get(session_id, set())
            watchers.discard(watch)
            if not watchers:
                self._watches.pop(session_id, None)

    def _wake(self, session_id: str) -> None:
        for watch in self._watches.get(session_id, ()):
            watch.set()

    def _wake_all(self) -> None:
        for session_id in list(self._watches):
            self._wake(session_id)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    log.warning(
                        "event notices: cannot listen on PostgreSQL (streams of sessions "
                        "running elsewhere poll meanwhile): %s",
                        exc,
                    )
                failures += 1
            finally:
                self.listening.clear()
            await asyncio.sleep(wait_after(failures))

    async def _listen_once(self) -> None:
        import psycopg  # here: a SQLite service (and the CLI) never loads the driver

        conn: Any = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=int(self._connect_timeout)
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            self._wake_all()  # whatever was stored while nobody listened: read again
            async for notice in conn.notifies():
                self._wake(notice.payload)
