"""Checkpoint writes are committed in batches (here on SQLite): concurrent writes share
transactions, each returns once committed, a bad write fails alone, order within a table is
kept, and what is queued at close is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from graph.checkpoints import open_checkpointer
from graph.sqlite_thread import sqlite_transaction
from graph.write_batches import BatchWriter, Statement, merged
from tests.test_sqlite_saver import BIG, config, counting_graph, query

PUT = "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)"
ADD = "INSERT OR IGNORE INTO kv (k, v) VALUES (?, ?)"
LOG = "INSERT INTO log (n) VALUES (?)"


def rows(bound: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    yield from bound


class Counting:
    """A BatchWriter over an aiosqlite connection, counting its transactions."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.lock, self.commits = asyncio.Lock(), 0
        self.transaction = sqlite_transaction(conn, self.lock, rows)

    async def __call__(self, statements: list[Statement]) -> None:
        self.commits += 1
        await self.transaction(statements)

    def writer(self) -> BatchWriter:
        return BatchWriter(self)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[Path, Counting]]:
    path = tmp_path / "batches.db"
    async with aiosqlite.connect(path) as conn:
        await conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        await conn.execute("CREATE TABLE log (n INTEGER NOT NULL)")
        await conn.commit()
        yield path, Counting(conn)


async def test_concurrent_writes_share_transactions_and_are_committed_when_they_return(db):
    path, conn = db
    writer = conn.writer()

    async def write(n: int) -> None:
        await writer.write(
            [Statement("kv", PUT, [(f"k{n}", f"v{n}")]), Statement("log", LOG, [(n,)])]
        )
        # committed: another connection sees it now
        assert query(path, "SELECT v FROM kv WHERE k = ?", f"k{n}") == [(f"v{n}",)]

    await asyncio.gather(*(write(n) for n in range(200)))
    assert len(query(path, "SELECT * FROM kv")) == 200
    assert len(query(path, "SELECT * FROM log")) == 200
    assert conn.commits < 20, f"200 concurrent writes took {conn.commits} transactions"
    await writer.aclose()


async def test_a_bad_write_fails_alone(db):
    path, conn = db
    writer = conn.writer()
    results = await asyncio.gather(
        *(
            writer.write([Statement("kv", PUT, [(f"k{n}", None if n == 3 else "v")])])
            for n in range(8)
        ),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results].count("IntegrityError") == 1
    assert isinstance(results[3], sqlite3.IntegrityError)
    assert sorted(k for (k,) in query(path, "SELECT k FROM kv")) == [
        f"k{n}" for n in range(8) if n != 3
    ]
    await writer.aclose()


async def test_order_within_a_table_is_kept_across_statement_kinds(db):
    path, conn = db
    writer = conn.writer()
    await asyncio.gather(
        writer.write([Statement("kv", ADD, [("a", "first")])]),
        writer.write([Statement("kv", PUT, [("a", "replaced")])]),
        writer.write([Statement("kv", ADD, [("a", "ignored"), ("b", "added")])]),
    )
    assert dict(query(path, "SELECT k, v FROM kv")) == {"a": "replaced", "b": "added"}
    await writer.aclose()


def test_merged_joins_rows_of_a_kind_and_keeps_each_tables_order():
    batch = [
        [Statement("kv", ADD, [("a", 1)]), Statement("log", LOG, [(1,)])],
        [Statement("kv", ADD, [("b", 2)]), Statement("log", LOG, [(2,)])],
        [Statement("kv", PUT, [("a", 3)])],
        [Statement("kv", ADD, [("c", 4)])],
    ]
    assert [(s.table, s.sql, s.rows) for s in merged(batch)] == [
        ("kv", ADD, [("a", 1), ("b", 2)]),
        ("log", LOG, [(1,), (2,)]),
        ("kv", PUT, [("a", 3)]),
        ("kv", ADD, [("c", 4)]),
    ]
    assert batch[0][0].rows == [("a", 1)]  # the writes' own statements are left as they were


async def test_writes_queued_at_close_are_committed(db):
    path, conn = db
    writer = conn.writer()
    pending = [
        asyncio.create_task(writer.write([Statement("log", LOG, [(n,)])])) for n in range(50)
    ]
    await asyncio.sleep(0)  # queued, not yet committed
    await writer.aclose()
    assert len(query(path, "SELECT * FROM log")) == 50
    await asyncio.gather(*pending)
    with pytest.raises(RuntimeError, match="closed"):
        await writer.write([Statement("log", LOG, [(0,)])])


async def run_many_at_once(saver: Any, runs: int = 30) -> None:
    """`runs` investigations at once on `saver`; each keeps every checkpoint and its
    whole history."""
    graph = counting_graph(saver)
    await asyncio.gather(
        *(graph.ainvoke({"big": BIG, "step": 0}, config(f"t{n}")) for n in range(runs))
    )
    for n in range(runs):
        state = await graph.aget_state(config(f"t{n}"))
        assert state.values["big"] == BIG and state.values["log"] == [1, 2, 3, 4]
        history = [s async for s in graph.aget_state_history(config(f"t{n}"))]
        assert [s.values.get("step") for s in history] == [4, 3, 2, 1, 0, None]


async def test_many_investigations_at_once_keep_every_checkpoint(tmp_path: Path):
    db = tmp_path / "history.db"
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        await run_many_at_once(saver)
    threads = query(db, "SELECT COUNT(DISTINCT thread_id) FROM checkpoints")
    assert threads == [(30,)]


async def test_writes_waiting_when_the_writer_is_cancelled_are_cancelled_not_left_hanging(db):
    path, conn = db
    writer = conn.writer()
    async with conn.lock:  # the first batch waits for the lock
        pending = [
            asyncio.create_task(writer.write([Statement("log", LOG, [(n,)])])) for n in range(3)
        ]
        await asyncio.sleep(0.01)
        assert writer._task is not None
        writer._task.cancel()
        done, _ = await asyncio.wait(pending, timeout=5)
    assert len(done) == 3 and all(task.cancelled() for task in done)
    assert query(path, "SELECT * FROM log") == []
