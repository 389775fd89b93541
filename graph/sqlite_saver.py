"""The SQLite checkpointer, storing each channel value once per version.

LangGraph's `AsyncSqliteSaver` serializes the whole state into every checkpoint: the
runbook, the tool results and the last prompt were encoded, compressed and written again
at every step though most steps change none of them. `BlobSqliteSaver` stores checkpoints
the way LangGraph's PostgreSQL saver does: the checkpoint row keeps the channel versions,
and a value goes into `checkpoint_blobs` once, when its channel gets a new version. Reads
put the values back, so callers see ordinary checkpoints.

Writes are committed in batches (`graph.write_batches`): many investigations' checkpoints
share one transaction instead of queueing for one each, and each transaction is one call
on the connection's thread (`graph.sqlite_thread`). A subgraph's writes are stored after
the root checkpoint they run under (`graph.checkpoint_order`).

Databases written by the stock saver are converted on first open (each stored value
becomes a blob, the rows lose their inline values); `PRAGMA user_version` records the
format."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql

from graph.checkpoint_order import CheckpointWriter
from graph.checkpoints import Encoded, packed
from graph.sqlite_thread import fetch_all, in_connection_thread, sqlite_transaction
from graph.thread_fence import ThreadFence
from graph.write_batches import Statement

FORMAT = 1
"""`PRAGMA user_version` of a database whose checkpoints keep their values as blobs."""

_BLOBS = """
CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
)"""
_BLOB_COLUMNS = "(thread_id, checkpoint_ns, channel, version, type, blob) VALUES (?, ?, ?, ?, ?, ?)"
_PUT_BLOB = f"INSERT OR REPLACE INTO checkpoint_blobs {_BLOB_COLUMNS}"
_ADD_BLOB = f"INSERT OR IGNORE INTO checkpoint_blobs {_BLOB_COLUMNS}"
_PUT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, metadata, type, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_WRITE_COLUMNS = (
    "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PUT_WRITE = f"INSERT OR REPLACE INTO writes {_WRITE_COLUMNS}"
_ADD_WRITE = f"INSERT OR IGNORE INTO writes {_WRITE_COLUMNS}"
EMPTY = "empty"
"""Blob type of a channel that has a version but no value (cleared)."""

BlobKey = tuple[str, str, str]
"""(checkpoint_ns, channel, version) within a thread."""

BlobRow = tuple[str, str, str, str, Encoded | tuple[str, None]]
"""(thread_id, checkpoint_ns, channel, version, encoding): a `checkpoint_blobs` row."""


class BlobSqliteSaver(AsyncSqliteSaver):
    """`AsyncSqliteSaver` with channel values stored once per version."""

    _blobs_ready = False
    _writer: CheckpointWriter | None = None
    fence: ThreadFence | None = None
    """Threads not to write now (graph/thread_fence.py); set before the first write."""
    convert_chunk = 200
    """Rows converted per transaction when a stock database is first opened."""

    async def setup(self) -> None:
        """The stock tables, then the blobs' (every write calls this: once set up, it
        returns at once, without taking the lock the writers of the file share)."""
        if self._blobs_ready:
            return
        await super().setup()
        async with self.lock:
            if self._blobs_ready:
                return
            await self.conn.execute(_BLOBS)
            async with self.conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            if (row[0] if row else 0) < FORMAT:
                await self._convert_inline_checkpoints()
                await self.conn.execute(f"PRAGMA user_version = {FORMAT}")
            await self.conn.commit()
            self._blobs_ready = True

    async def _convert_inline_checkpoints(self) -> None:
        """Move the values of checkpoints written by the stock saver into blobs, a chunk of
        rows at a time (a large history is never held in memory at once)."""
        after = 0
        while True:
            async with self.conn.execute(
                "SELECT rowid, thread_id, checkpoint_ns, type, checkpoint FROM checkpoints "
                "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, self.convert_chunk),
            ) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return
            after = rows[-1][0]
            for rowid, thread_id, ns, type_, data in rows:
                checkpoint = self.serde.loads_typed((type_, data))
                values = checkpoint.get("channel_values") or {}
                if not values:
                    continue
                blobs = self._blob_rows(thread_id, ns, values, checkpoint["channel_versions"])
                await self.conn.executemany(_ADD_BLOB, _bound(blobs))
                stored = self.serde.dumps_typed({**checkpoint, "channel_values": {}})
                await self.conn.execute(
                    "UPDATE checkpoints SET type = ?, checkpoint = ? WHERE rowid = ?",
                    (*stored, rowid),
                )
            await self.conn.commit()

    def _encode(self, value: Any, *, remember: bool = True) -> Encoded:
        """`value`'s encoding, its compression left to the connection's thread when the
        serde supports that (`CompressedSerde.encode`)."""
        encode = getattr(self.serde, "encode", None)
        if encode is None:
            return self.serde.dumps_typed(value)
        return encode(value, remember=remember)

    def _blob_rows(
        self,
        thread_id: str,
        ns: str,
        values: Mapping[str, Any],
        versions: Mapping[str, Any],
    ) -> list[BlobRow]:
        rows: list[BlobRow] = []
        for channel, version in versions.items():
            if channel in values:
                rows.append((thread_id, ns, channel, str(version), self._encode(values[channel])))
            else:
                rows.append((thread_id, ns, channel, str(version), (EMPTY, None)))
        return rows

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Write the checkpoint without its values, and the values of the channels that
        got a new version, in one transaction."""
        await self.setup()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable["checkpoint_ns"]
        blobs = self._blob_rows(thread_id, ns, checkpoint.get("channel_values", {}), new_versions)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        row = (
            thread_id,
            ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            meta.encode("utf-8", "ignore"),
            self._encode({**checkpoint, "channel_values": {}}, remember=False),
        )
        statements = [Statement("checkpoint_blobs", _PUT_BLOB, blobs)] if blobs else []
        statements.append(Statement("checkpoints", _PUT_CHECKPOINT, [row]))
        await self._writes().checkpoint(configurable, checkpoint["id"], statements)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """The stock saver's, with large values compressed in the connection's thread and
        committed with other writes."""
        await self.setup()
        configurable = config["configurable"]
        head = (
            str(configurable["thread_id"]),
            str(configurable["checkpoint_ns"]),
            str(configurable["checkpoint_id"]),
            task_id,
            task_path,
        )
        rows = [
            (*head, WRITES_IDX_MAP.get(channel, idx), channel, self._encode(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        sql = _PUT_WRITE if replace else _ADD_WRITE
        await self._writes().writes(configurable, [Statement("writes", sql, rows)])

    async def _root_stored(self, thread_id: str, checkpoint_id: str) -> bool:
        sql = (
            "SELECT 1 FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
            "AND checkpoint_id = ?"
        )
        async with self.lock:
            rows = await in_connection_thread(self.conn, fetch_all, sql, (thread_id, checkpoint_id))
        return bool(rows)

    def _writes(self) -> CheckpointWriter:
        if self._writer is None:
            self._writer = CheckpointWriter(
                sqlite_transaction(self.conn, self.lock, _bound, self.fence), self._root_stored
            )
        return self._writer

    async def aclose(self) -> None:
        """Commit the writes still queued; call before the connection closes."""
        if self._writer is not None:
            await self._writer.aclose()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The stock saver's checkpoint (the one `config` names, else the thread's latest)
        with its pending writes, read in one call on the connection's thread, where the
        stock saver went there six times (four for a thread with no checkpoint yet, as
        every new investigation and agent starts); then its values."""
        await self.setup()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        wanted_id = get_checkpoint_id(config)
        writes_sql = pending_writes_sql(self._has_task_path)
        async with self.lock:
            found = await in_connection_thread(
                self.conn, _read_checkpoint, thread_id, ns, wanted_id, writes_sql
            )
        if found is None:
            return None
        (checkpoint_id, parent_id, type_, data, metadata), writes = found
        if not wanted_id:
            config = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            }
        parent = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}
        tup = CheckpointTuple(
            config,
            self.serde.loads_typed((type_, data)),
            cast(CheckpointMetadata, json.loads(metadata) if metadata is not None else {}),
            {"configurable": parent} if parent_id else None,
            load_pending_writes(writes, self.serde),
        )
        return _with_values(tup, await self._load_blobs(thread_id, _wanted([tup])))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        # The stock listing holds the connection's lock while it yields: read it whole,
        # then the blobs of all its checkpoints, one query per thread.
        found = [t async for t in super().alist(config, filter=filter, before=before, limit=limit)]
        by_thread: dict[str, list[CheckpointTuple]] = {}
        for tup in found:
            by_thread.setdefault(str(tup.config["configurable"]["thread_id"]), []).append(tup)
        values = {t: await self._load_blobs(t, _wanted(ts)) for t, ts in by_thread.items()}
        for tup in found:
            yield _with_values(tup, values[str(tup.config["configurable"]["thread_id"])])

    async def _load_blobs(self, thread_id: str, wanted: set[BlobKey]) -> dict[BlobKey, Any]:
        """The values of `wanted` in one thread, a few hundred keys per query."""
        keys, values = sorted(wanted), {}
        for start in range(0, len(keys), 300):
            chunk = keys[start : start + 300]
            query = (
                "SELECT checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs "
                "WHERE thread_id = ? AND (checkpoint_ns, channel, version) IN (VALUES "
                + ", ".join("(?, ?, ?)" for _ in chunk)
                + ")"
            )
            params = (thread_id, *(part for key in chunk for part in key))
            async with self.lock:
                rows = await in_connection_thread(self.conn, fetch_all, query, params)
            for ns, channel, version, type_, blob in rows:
                if type_ != EMPTY:
                    values[(ns, channel, version)] = self.serde.loads_typed((type_, blob))
        return values

    async def adelete_thread(self, thread_id: str) -> None:
        await super().adelete_thread(thread_id)
        async with self.lock:
            await self.conn.execute(
                "DELETE FROM checkpoint_blobs WHERE thread_id = ?", (str(thread_id),)
            )
            await self.conn.commit()


_CHECKPOINT_COLUMNS = "checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
_CHECKPOINT_BY_ID = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
_LATEST_CHECKPOINT = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1"
)


def _read_checkpoint(
    raw: sqlite3.Connection, thread_id: str, ns: str, checkpoint_id: str | None, writes_sql: str
) -> tuple[tuple[Any, ...], list[Any]] | None:
    """(the checkpoint's row, its pending writes' rows), or None: the stock saver's two
    queries, in one call on the connection's thread (`in_connection_thread`)."""
    if checkpoint_id:
        row = raw.execute(_CHECKPOINT_BY_ID, (thread_id, ns, checkpoint_id)).fetchone()
    else:
        row = raw.execute(_LATEST_CHECKPOINT, (thread_id, ns)).fetchone()
    if row is None:
        return None
    return row, raw.execute(writes_sql, (thread_id, ns, row[0])).fetchall()


def _bound(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Statement parameters for `rows`, whose last item is an encoding. `executemany`
    iterates this in the connection's thread: large values are compressed there, off the
    event loop."""
    for *head, encoding in rows:
        yield (*head, *packed(encoding))


def _key(tup: CheckpointTuple, channel: str, version: Any) -> BlobKey:
    return (tup.config["configurable"].get("checkpoint_ns", ""), channel, str(version))


def _wanted(tuples: Iterable[CheckpointTuple]) -> set[BlobKey]:
    """Blobs the checkpoints need: every versioned channel without an inline value."""
    return {
        _key(tup, channel, version)
        for tup in tuples
        for channel, version in tup.checkpoint["channel_versions"].items()
        if channel not in tup.checkpoint.get("channel_values", {})
    }


def _with_values(tup: CheckpointTuple, blobs: Mapping[BlobKey, Any]) -> CheckpointTuple:
    """`tup` with its channel values filled in from `blobs` (a value may be shared with
    other checkpoints of the same listing: callers replace values, never mutate them)."""
    checkpoint = tup.checkpoint
    values = dict(checkpoint.get("channel_values", {}))
    for channel, version in checkpoint["channel_versions"].items():
        key = _key(tup, channel, version)
        if channel not in values and key in blobs:
            values[channel] = blobs[key]
    return tup._replace(checkpoint={**checkpoint, "channel_values": values})
