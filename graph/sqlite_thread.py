"""Work on a SQLite connection's own thread (aiosqlite runs each connection on a thread of
its own): a function run there in one call, and the checkpoint savers' write batches,
each a whole transaction in one such call."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import aiosqlite

from graph.thread_fence import ThreadFence, thread_ids, without
from graph.write_batches import Rows, Statement, Transaction

T = TypeVar("T")


def sqlite_transaction(
    conn: aiosqlite.Connection,
    lock: asyncio.Lock,
    bind: Callable[[Rows], Iterable[tuple[Any, ...]]],
    fence: ThreadFence | None = None,
) -> Transaction:
    """Batches run on `conn` under `lock` (shared with the other writers of the file),
    each whole transaction in one call on the connection's thread (`in_connection_thread`):
    `bind(rows)` gives a statement's parameters. `fence`: the rows of the threads it names
    are dropped."""

    def transaction(raw: sqlite3.Connection, statements: list[Statement]) -> None:
        if fence is not None:  # the write lock is taken first: no takeover between the
            sql, params = fence.query(thread_ids(statements), "?")  # check and the writes
            fenced = {str(row[0]) for row in raw.execute(sql, params).fetchall()}
            statements = without(statements, fenced)
        for statement in statements:
            raw.executemany(statement.sql, bind(statement.rows))

    async def run(statements: list[Statement]) -> None:
        async with lock:
            await in_connection_thread(conn, write_transaction, transaction, statements)

    return run


def write_transaction(raw: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(raw, *args)` in a write transaction (for `in_connection_thread`): it begins with
    BEGIN IMMEDIATE, SQLite's write lock taken first, unless one is open already; committed
    when `fn` returns, rolled back when it raises."""
    if not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")
    try:
        result = fn(raw, *args)
        raw.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            raw.rollback()
        raise
    return result


async def in_connection_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(sqlite3_connection, *args)` run on the thread that owns `conn`'s connection.

    Each aiosqlite call is a round trip to that thread and back: a wake-up of the event
    loop, and a reply that waits behind whatever else the loop has queued. A read took
    three (execute, fetch, close) and a batch three or four (statements, commit); as one
    function each takes one. aiosqlite has no public way to run a function on its thread;
    this uses the one its own methods use, in this one place."""
    raw = conn._conn
    return cast(T, await conn._execute(fn, raw, *args))


def fetch_all(raw: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of one query (for `in_connection_thread`)."""
    return raw.execute(sql, params).fetchall()
