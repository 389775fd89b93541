"""Write transactions on a SQLite database file, each in one call on the thread of a
connection of their own.

Through SQLAlchemy's asyncio engine and its aiosqlite adapter, a write transaction cost
about 0.3 ms of CPU before its first statement: a pool checkout, greenlet switches and
three round trips to the connection's thread (BEGIN, COMMIT, the reset when the
connection went back to the pool), each a wake-up of that thread and of the event loop.
SQLite itself takes a few microseconds for a small transaction. The event log writes one
every few events of every session, so its writes come here: BEGIN IMMEDIATE, the work and
COMMIT run as one function on this connection's thread (`write_transaction`, as the
checkpointer's batches do), with the pragmas the engine's connections get, and errors
raised as SQLAlchemy raises them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

from graph.sqlite_thread import in_connection_thread, write_transaction
from server.store.engine import configure_sqlite, on_sqlite_thread

T = TypeVar("T")


class SqliteWrites:
    """`await SqliteWrites.open(path)`, then `await writes.transaction(sql, fn, *args)`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: str) -> SqliteWrites:
        # autocommit mode: `transaction` says where each transaction begins and ends
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await in_connection_thread(conn, configure_sqlite)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def transaction(self, statement: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` in a write transaction, committed when it
        returns and rolled back when it raises, in one call on the connection's thread;
        sqlite3 errors are raised as SQLAlchemy raises `statement`'s."""
        return await on_sqlite_thread(self._conn, statement, write_transaction, fn, *args)

    async def aclose(self) -> None:
        await self._conn.close()
