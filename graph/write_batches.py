"""Writes committed in batches (group commit), for any database.

`GroupCommit` is the mechanism: writes queued while a transaction is under way are
committed together in the next one, each caller returning once its write is committed; a
batch that fails is committed again one write at a time, so a bad write fails alone. The
checkpoint savers use it through `BatchWriter`; the session index for new sessions' rows.

Each checkpoint and each task's writes used to be a transaction of its own, and a saver
runs one transaction at a time on its connection. With many investigations at once those
transactions queued one behind another, and the investigations' last checkpoints waited
seconds for their turn. `BatchWriter` queues the statements of every write and a single
task commits all that is queued in one transaction: the same round trips and one commit
serve every write in the batch. Under light load a batch holds one write and costs what
it did before.

Each write still returns only once its transaction is committed. Statements keep their
order within a table (rows of different tables do not depend on each other). A batch that
fails is retried one write at a time, so a bad write fails alone. How a batch is run in
one transaction is the saver's (`Transaction`): SQLite's and PostgreSQL's sit with their
savers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Rows = list[tuple[Any, ...]]
W = TypeVar("W")


@dataclass(frozen=True)
class Statement:
    """`sql` run for every row of `rows` (`executemany`); `table` is the table it writes."""

    table: str
    sql: str
    rows: Rows


Transaction = Callable[[list[Statement]], Awaitable[None]]
"""Runs statements (each `executemany` over its rows, in order) in one transaction:
committed when it returns, rolled back when it raises."""


def outcome_future() -> asyncio.Future[None]:
    """A future whose failure counts as seen even when nobody awaits it (its waiters may
    all have been cancelled)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.add_done_callback(_retrieved)
    return future


def _retrieved(done: asyncio.Future[None]) -> None:
    """Marks the outcome as seen: a caller cancelled meanwhile does not look at it."""
    if not done.cancelled():
        done.exception()


@dataclass
class _Write(Generic[W]):
    write: W
    done: asyncio.Future[None] = field(default_factory=outcome_future)


def merged(writes: Iterable[list[Statement]]) -> list[Statement]:
    """The statements of `writes`, in order, with consecutive statements of one table and
    the same SQL joined into one (so a batch costs one `executemany` per kind of row)."""
    segments: list[Statement] = []
    last: dict[str, int] = {}  # table → index of its latest segment
    for statements in writes:
        for statement in statements:
            at = last.get(statement.table)
            if at is not None and segments[at].sql == statement.sql:
                segments[at].rows.extend(statement.rows)
                continue
            last[statement.table] = len(segments)
            segments.append(Statement(statement.table, statement.sql, list(statement.rows)))
    return segments


class GroupCommit(Generic[W]):
    """Commits queued writes in batches, each batch through `commit(writes)` (one
    transaction: committed when it returns, rolled back when it raises)."""

    max_batch = 500
    """Writes committed together at most."""

    def __init__(self, commit: Callable[[list[W]], Awaitable[None]], *, name: str) -> None:
        self.commit, self.name = commit, name
        self._queue: asyncio.Queue[_Write[W]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def write(self, write: W) -> None:
        """Queue `write` and wait until it is committed (raises what its commit raised)."""
        if self._closed:
            raise RuntimeError(f"the {self.name} are closed")
        item = _Write(write)
        self._queue.put_nowait(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)
        await asyncio.shield(item.done)  # a cancelled caller's write is still committed

    async def aclose(self) -> None:
        """Commit what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        batch: list[_Write[W]] = []
        try:
            while not self._queue.empty():
                batch = list(self._take())
                await self._commit_isolating(batch)
        except BaseException as exc:  # cancelled: no write is left waiting for good
            for item in batch:
                _settle(item, exc)
            while not self._queue.empty():
                _settle(self._queue.get_nowait(), exc)
            raise

    async def _commit_isolating(self, batch: list[_Write[W]]) -> None:
        """Commit `batch`; when that fails, each write on its own, so only a bad one fails."""
        try:
            await self._commit(batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            log.warning("%d %s failed together (%s): retrying each", len(batch), self.name, exc)
        for item in batch:
            try:
                await self._commit([item])
            except Exception as exc:
                _settle(item, exc)

    def _take(self) -> Iterator[_Write[W]]:
        for _ in range(self.max_batch):
            if self._queue.empty():
                return
            yield self._queue.get_nowait()

    async def _commit(self, batch: list[_Write[W]]) -> None:
        await self.commit([item.write for item in batch])
        for item in batch:
            _settle(item, None)


class BatchWriter(GroupCommit[list[Statement]]):
    """Commits queued statements (each write one transaction's worth) in batches, each
    through `transaction`, with the statements of one kind `merged`."""

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(self._merged, name="checkpoint writes")
        self.transaction = transaction

    async def _merged(self, writes: list[list[Statement]]) -> None:
        await self.transaction(merged(writes))


def _settle(item: _Write[Any], error: BaseException | None) -> None:
    if item.done.done():
        return
    if error is None:
        item.done.set_result(None)
    elif isinstance(error, asyncio.CancelledError):
        item.done.cancel()
    else:
        item.done.set_exception(error)
