"""The PostgreSQL checkpointer commits its writes in batches, on the local server: many
investigations at once share transactions and keep every checkpoint; the stock saver reads
what it stores; a subgraph's write waits for its root checkpoint; what is queued at close
is committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from sqlalchemy.engine import make_url

from graph.checkpoints import open_checkpointer
from tests.pg import fresh_database
from tests.test_checkpoint_order import child, root
from tests.test_sqlite_saver import BIG, config, counting_graph
from tests.test_write_batches import run_many_at_once

pytestmark = pytest.mark.postgres


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
async def saver(url: str) -> AsyncIterator[Any]:
    async with open_checkpointer(url) as saver:
        yield saver


def counted(saver: Any) -> list[int]:
    """Count the transactions of `saver`'s batches: one list item per transaction, the
    number of statements in it."""
    writer = saver._writes().batches
    run, seen = writer.transaction, []

    async def counting(statements: list[Any]) -> None:
        seen.append(len(statements))
        await run(statements)

    writer.transaction = counting
    return seen


def root_of(thread: str) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


async def rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(plain) as conn:
        cursor = await conn.execute(sql, args)
        return await cursor.fetchall()


async def test_many_investigations_at_once_share_transactions_and_keep_every_checkpoint(
    saver: Any, url: str
):
    transactions = counted(saver)
    await run_many_at_once(saver)
    assert await rows(url, "SELECT COUNT(DISTINCT thread_id) FROM checkpoints") == [(30,)]
    # 30 runs × (6 checkpoints + 5 tasks' writes) = 330 writes
    assert len(transactions) < 165, f"330 writes took {len(transactions)} transactions"


async def test_the_stock_saver_reads_what_it_stores(saver: Any, url: str):
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    graph = counting_graph(saver, interrupt_after=["b"])
    await graph.ainvoke({"big": BIG, "step": 0}, config("t1"))
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncPostgresSaver.from_conn_string(plain) as stock:
        resumed = counting_graph(stock)
        assert (await resumed.aget_state(config("t1"))).values["step"] == 2
        final = await resumed.ainvoke(None, config("t1"))
    assert final["big"] == BIG and final["log"] == [1, 2, 3, 4]


async def test_a_subgraph_write_waits_for_its_root_checkpoint(saver: Any, url: str):
    checkpoint = empty_checkpoint()
    write = asyncio.create_task(
        saver.aput_writes(child(checkpoint["id"]), [("tool_calls", [{"ref": "T1.1"}])], "x")
    )
    await asyncio.sleep(0.3)
    assert not write.done()
    assert await rows(url, "SELECT COUNT(*) FROM checkpoint_writes") == [(0,)]
    await saver.aput(root(), checkpoint, {}, {})
    await asyncio.wait_for(write, 5)
    assert await rows(url, "SELECT checkpoint_ns, channel FROM checkpoint_writes") == [
        ("kubernetes_agent:task-1", "tool_calls")
    ]


async def test_a_bad_write_fails_alone_and_queued_writes_are_committed_at_close(url: str):
    async with open_checkpointer(url) as saver:
        good = [empty_checkpoint() for _ in range(5)]
        bad = {**empty_checkpoint(), "id": None}  # NOT NULL checkpoint_id
        results = await asyncio.gather(
            *(saver.aput(root_of(f"t{n}"), c, {}, {}) for n, c in enumerate(good[:2])),
            saver.aput(root(), bad, {}, {}),
            *(saver.aput(root_of(f"u{n}"), c, {}, {}) for n, c in enumerate(good[2:])),
            return_exceptions=True,
        )
        assert [isinstance(r, Exception) for r in results] == [False] * 2 + [True] + [False] * 3
        queued = [
            asyncio.create_task(saver.aput(root_of(f"v{n}"), empty_checkpoint(), {}, {}))
            for n in range(20)
        ]
        await asyncio.sleep(0)
    await asyncio.gather(*queued)
    assert await rows(url, "SELECT COUNT(*) FROM checkpoints") == [(25,)]
