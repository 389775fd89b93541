"""Event notices between replicas (or the workers of one service) sharing a database: the
event stream of a session that another process runs follows its events as they are
stored, where it would otherwise read the database again every second.

On PostgreSQL, a replica that stores events of a session says so on the `sre_events`
channel (NOTIFY, in the same transaction: the notice is sent when they are committed,
never before), and every replica LISTENs on a connection of its own. SQLite has no such
channel: while a stream here waits for a session running elsewhere, one task asks the
file every `POLL_SECONDS` (10 ms) which sessions got events since it last asked (one indexed
query, whatever the number of streams). While notices cannot be had (the listening
connection is down, a query fails), streams poll every second as before, and once they
are back every watched stream reads again, so nothing stored meanwhile is missed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from server.retries import wait_after
from server.store import events

if TYPE_CHECKING:
    from server.store.store import Store

log = logging.getLogger(__name__)

CHANNEL = "sre_events"
POLL_SECONDS = 0.01
"""How often a SQLite replica asks for new events while a stream waits on another's."""
_POLL_ROWS = 5000
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', sid) FROM unnest(CAST(:ids AS text[])) AS sid"


def notify(conn: Connection, session_ids: Collection[str]) -> None:
    """Announce, in `conn`'s transaction, that events of `session_ids` were stored."""
    if session_ids and conn.dialect.name == "postgresql":
        conn.execute(text(_NOTIFY), {"ids": sorted(session_ids)})


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
    """Wakes the streams watching a session when another process stores its events. The
    notices of one kind of database are a subclass's (`_run`)."""

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while notices are had

    @classmethod
    def for_store(cls, store: Store) -> EventNotices:
        """The notices of `store`'s kind of database."""
        if store.dialect == "postgresql":
            return PostgresNotices(store.engine.url)
        return SqliteNotices(store)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-notices")

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

    async def _run(self) -> None:
        raise NotImplementedError

    async def _retrying(self, once: Callable[[], Awaitable[None]], source: str) -> None:
        """`once` again and again, after a growing wait while it fails."""
        failures = 0
        while True:
            try:
                await once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    log.warning(
                        "event notices: cannot %s (streams of sessions running elsewhere "
                        "poll meanwhile): %s",
                        source,
                        exc,
                    )
                failures += 1
            finally:
                self.listening.clear()
            await asyncio.sleep(wait_after(failures))


class PostgresNotices(EventNotices):
    """LISTENs on `sre_events`."""

    def __init__(self, url: URL, *, connect_timeout: float = 5.0) -> None:
        super().__init__()
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout

    async def _run(self) -> None:
        await self._retrying(self._listen_once, "listen on PostgreSQL")

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


class SqliteNotices(EventNotices):
    """Asks the SQLite file for new events while any stream here watches a session."""

    def __init__(self, store: Store, *, interval: float = POLL_SECONDS) -> None:
        super().__init__()
        self._store, self._interval = store, interval
        self._wanted = asyncio.Event()  # set while a stream watches

    @contextlib.contextmanager
    def watch(self, session_id: str) -> Iterator[Watch]:
        self._wanted.set()
        with super().watch(session_id) as watch:
            yield watch

    async def _run(self) -> None:
        await self._retrying(self._poll_while_watched, "read new events from SQLite")

    async def _poll_while_watched(self) -> None:
        while True:
            await self._wanted.wait()
            mark = await self._store.read(events.last_rowid)
            self.listening.set()
            self._wake_all()  # whatever was stored before the mark: read again
            while self._watches:
                await asyncio.sleep(self._interval)
                mark, stored = await self._store.read(events.sessions_since, mark, _POLL_ROWS)
                for session_id in stored:
                    self._wake(session_id)
            self.listening.clear()
            self._wanted.clear()
