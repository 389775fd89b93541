"""The PostgreSQL checkpointer, its writes committed in batches.

LangGraph's `AsyncPostgresSaver` writes each checkpoint and each task's writes as a round
trip of its own on its one connection, under a lock, after serializing the values in a
worker thread. With many investigations at once those writes queued one behind another.
`BatchedPostgresSaver` stores the same rows (the stock saver reads them back), but queues
them to a `BatchWriter` (`graph.write_batches`), which commits all that is queued in one
transaction; and it serializes on the event loop, where encoding a state costs less than
a trip to a worker thread and back.
A subgraph's writes are stored after the root checkpoint they run under
(`graph.checkpoint_order`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres import _ainternal
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb

from graph.checkpoint_order import CheckpointWriter
from graph.thread_fence import ThreadFence, thread_ids, without
from graph.write_batches import Statement


class BatchedPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` with batched writes; call `aclose()` before its connection
    closes, so the writes still queued are committed."""

    _writer: CheckpointWriter | None = None
    fence: ThreadFence | None = None
    """Threads not to write now (graph/thread_fence.py); set before the first write."""

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """The stock saver's rows: primitive channel values inline in the checkpoint, the
        others as blobs of the channels that got a new version."""
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
        copy = checkpoint.copy()
        values = copy["channel_values"] = copy["channel_values"].copy()
        blob_values: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[channel] = values.pop(channel)
                values[channel] = True
            elif value is None or isinstance(value, str | int | float | bool):
                pass
            else:
                blob_values[channel] = values.pop(channel)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        statements = []
        if versions:
            blobs = self._dump_blobs(thread_id, ns, blob_values, versions)
            statements.append(
                Statement("checkpoint_blobs", self.UPSERT_CHECKPOINT_BLOBS_SQL, list(blobs))
            )
        row = (
            thread_id,
            ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            Jsonb(copy),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        statements.append(Statement("checkpoints", self.UPSERT_CHECKPOINTS_SQL, [row]))
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
        configurable = config["configurable"]
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        sql = self.UPSERT_CHECKPOINT_WRITES_SQL if replace else self.INSERT_CHECKPOINT_WRITES_SQL
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        await self._writes().writes(configurable, [Statement("checkpoint_writes", sql, list(rows))])

    async def aclose(self) -> None:
        """Commit the writes still queued."""
        if self._writer is not None:
            await self._writer.aclose()

    def _writes(self) -> CheckpointWriter:
        if self._writer is None:
            self._writer = CheckpointWriter(self._transaction, self._root_stored)
        return self._writer

    async def _transaction(self, statements: list[Statement]) -> None:
        async with (
            self.lock,
            _ainternal.get_connection(self.conn) as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            if self.fence is not None:
                sql, params = self.fence.query(thread_ids(statements), "%s")
                await cursor.execute(sql, params)
                fenced = {str(row["thread_id"]) for row in await cursor.fetchall()}
                statements = without(statements, fenced)
            for statement in statements:
                await cursor.executemany(statement.sql, statement.rows)

    async def _root_stored(self, thread_id: str, checkpoint_id: str) -> bool:
        async with self._cursor() as cursor:
            await cursor.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
                "AND checkpoint_id = %s",
                (thread_id, checkpoint_id),
            )
            return await cursor.fetchone() is not None
