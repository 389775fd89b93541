"""Where the store's operations run. Each operation is a plain function of a SQLAlchemy
`Connection` (its statements, nothing else); a `Database` runs it in a read or in a write
transaction and returns what it returns.

On a SQLite file (`SqliteFile`) it runs in one call on the thread of a connection of the
store's own: one writer, and readers opened as reads overlap (the write-ahead log lets
them read while the writer writes). Through SQLAlchemy's asyncio engine, a transaction
cost about 0.3 ms of CPU before its first statement (a pool checkout, greenlet switches,
three or more round trips to the connection's thread), where SQLite itself takes a few
microseconds for a small one; here it is one round trip and SQLAlchemy's synchronous
execution. Elsewhere (PostgreSQL; SQLite in memory or named by a URI, which a second
connection would not see) it runs through the asyncio engine (`EngineDatabase`,
`run_sync`)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import aiosqlite
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from graph.sqlite_thread import in_connection_thread, write_transaction
from server.store.engine import configure_sqlite, json_dumps, on_sqlite_thread, write_engine

T = TypeVar("T")
P = ParamSpec("P")
Operation = Callable[Concatenate[Connection, P], T]

MAX_READERS = 4
"""Reader connections of a SQLite file at most; a read waits for the least busy one."""


class Database(Protocol):
    async def read(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, ...)` in a read transaction (one snapshot for its statements)."""
        ...

    async def write(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, ...)` in a write transaction: committed when it returns, rolled
        back when it raises (on SQLite it holds the write lock from its start)."""
        ...

    async def aclose(self) -> None: ...


class EngineDatabase:
    """Operations through an asyncio engine's connections (`run_sync`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine, self._writer = engine, write_engine(engine)

    async def read(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._writer.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def aclose(self) -> None:
        return None  # the engine is its owner's to dispose of


class _Connection:
    """One aiosqlite connection to the file (a thread of its own) and a SQLAlchemy
    connection over the same sqlite3 connection, used only on that thread."""

    def __init__(self, driver: aiosqlite.Connection, conn: Connection) -> None:
        self.driver, self.conn = driver, conn
        self.calls = 0  # running or waiting on its thread

    @classmethod
    async def open(cls, path: str) -> _Connection:
        # autocommit mode: the operations' wrappers say where transactions begin and end
        driver = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn = await in_connection_thread(driver, _attach)
        except BaseException:
            await driver.close()
            raise
        return cls(driver, conn)

    async def run(self, statement: str, fn: Callable[..., T], *args: Any) -> T:
        self.calls += 1
        try:
            return await on_sqlite_thread(self.driver, statement, fn, self.conn, *args)
        finally:
            self.calls -= 1

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await in_connection_thread(self.driver, lambda _raw: self.conn.close())
        await self.driver.close()


def _attach(raw: sqlite3.Connection) -> Connection:
    """On the connection's thread: its pragmas, and a SQLAlchemy connection over it."""
    configure_sqlite(raw)
    engine = create_engine(
        "sqlite+pysqlite://", creator=lambda: raw, poolclass=StaticPool, json_serializer=json_dumps
    )
    return engine.connect()


def _in_write(raw: sqlite3.Connection, conn: Connection, fn: Callable[..., T], *args: Any) -> T:
    try:
        return write_transaction(raw, lambda _raw: fn(conn, *args))
    finally:
        conn.rollback()  # SQLAlchemy's view: no transaction (it was committed or rolled back)


def _in_read(raw: sqlite3.Connection, conn: Connection, fn: Callable[..., T], *args: Any) -> T:
    raw.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        conn.rollback()
        if raw.in_transaction:
            raw.rollback()


class SqliteFile:
    """Operations on a SQLite database file, on connections of their own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: asyncio.Task[_Connection] | None = None
        self._readers: list[asyncio.Task[_Connection]] = []
        self._closed = False

    async def read(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        reader = await self._connection(self._reader())
        return await reader.run("BEGIN", _in_read, _bound(fn, kwargs), *args)

    async def write(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._writer is None or _failed(self._writer):
            self._writer = self._opening()
        writer = await self._connection(self._writer)
        return await writer.run("BEGIN IMMEDIATE", _in_write, _bound(fn, kwargs), *args)

    def _reader(self) -> asyncio.Task[_Connection]:
        """An idle reader, else a new one (up to MAX_READERS), else the least busy."""
        self._readers = [r for r in self._readers if not _failed(r)]
        ready = [r for r in self._readers if r.done()]
        idle = next((r for r in ready if r.result().calls == 0), None)
        if idle is not None:
            return idle
        if len(self._readers) < MAX_READERS:
            self._readers.append(self._opening())
            return self._readers[-1]
        if ready:
            return min(ready, key=lambda r: r.result().calls)
        return self._readers[0]

    def _opening(self) -> asyncio.Task[_Connection]:
        if self._closed:  # its thread would keep the process from exiting
            raise RuntimeError("the store is closed")
        return asyncio.ensure_future(_Connection.open(self.path))

    @staticmethod
    async def _connection(opening: asyncio.Task[_Connection]) -> _Connection:
        return await asyncio.shield(opening)  # a caller's cancellation leaves it to others

    async def aclose(self) -> None:
        self._closed = True
        tasks = [t for t in (self._writer, *self._readers) if t is not None]
        self._writer, self._readers = None, []
        for task in tasks:
            with contextlib.suppress(Exception):  # it failed to open: nothing to close
                await (await task).aclose()


def _failed(task: asyncio.Task[Any]) -> bool:
    """An opening that failed (the next caller tries again)."""
    return task.done() and (task.cancelled() or task.exception() is not None)


def _bound(fn: Operation[P, T], kwargs: dict[str, Any]) -> Callable[..., T]:
    if not kwargs:
        return fn
    return lambda conn, *args: fn(conn, *args, **kwargs)
