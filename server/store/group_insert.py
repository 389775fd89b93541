"""Rows inserted in batches (group commit): the new sessions of a burst of alerts.

A `POST /alerts` returns once its session's row is committed. With a hundred alerts at
once, a transaction each queued them one behind another for SQLite's one write lock (and
the investigations' first checkpoints queued behind them). `GroupInsert` gathers the rows
asked for while a transaction is being waited for and commits them together: one
`executemany` per set of columns, one commit. A batch the database refuses (one row's
unique key is taken) is inserted again one row at a time, so only the bad row fails, with
its own error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

Write = Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]]
"""Opens a write transaction: committed when its block ends, rolled back when it raises."""


class GroupInsert:
    max_batch = 500
    """Rows committed together at most."""

    def __init__(self, table: Table, write: Write) -> None:
        self.table, self._write = table, write
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def insert(self, values: dict[str, Any]) -> None:
        """Insert a row of `values`; returns once it is committed, raises what the
        database raised for it (IntegrityError for a taken unique key)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)
        self._pending.append((values, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="index-inserts")
        await asyncio.shield(done)  # a cancelled caller's row is still committed (or not)

    async def _run(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            await asyncio.sleep(0)  # rows asked for at the same moment join this batch
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                await self._commit(batch)
        except BaseException as exc:  # cancelled: no caller is left waiting for good
            for _, done in batch + self._pending:
                if not done.done():
                    done.set_exception(exc)
            self._pending = []
            raise

    async def _commit(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
        for values, _ in batch:
            by_columns.setdefault(frozenset(values), []).append(values)
        try:
            async with self._write() as conn:
                for rows in by_columns.values():
                    await conn.execute(insert(self.table), rows)
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for values, done in batch:  # each alone: only a bad row fails
                try:
                    async with self._write() as conn:
                        await conn.execute(insert(self.table).values(values))
                except Exception as alone:
                    done.set_exception(alone)
                else:
                    done.set_result(None)
            return
        for _, done in batch:
            done.set_result(None)


def _retrieved(done: asyncio.Future[None]) -> None:
    """Marks the outcome as seen: a caller cancelled meanwhile does not look at it."""
    if not done.cancelled():
        done.exception()
