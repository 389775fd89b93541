"""A subgraph's checkpoint writes are stored after the root checkpoint they run under, so
a restart never resumes from an older root checkpoint while the subgraph's tool results
are stored (the agent would start again as a new task and call those tools again)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from graph.checkpoint_order import RootOrder
from graph.checkpoints import open_checkpointer
from tests.test_sqlite_saver import query


def child(root_id: str) -> Any:
    return {
        "configurable": {
            "thread_id": "t",
            "checkpoint_ns": "kubernetes_agent:task-1",
            "checkpoint_id": "child-1",
            "checkpoint_map": {"": root_id},
        }
    }


def root() -> Any:
    return {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}


async def test_a_subgraph_write_waits_for_its_root_checkpoint(tmp_path: Path):
    db = tmp_path / "history.db"
    checkpoint = empty_checkpoint()
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        write = asyncio.create_task(
            saver.aput_writes(child(checkpoint["id"]), [("tool_calls", [{"ref": "T1.1"}])], "x")
        )
        await asyncio.sleep(0.3)
        assert not write.done()
        assert query(db, "SELECT COUNT(*) FROM writes") == [(0,)]
        await saver.aput(root(), checkpoint, {}, {})
        await asyncio.wait_for(write, 5)
    assert query(db, "SELECT checkpoint_ns, channel FROM writes") == [
        ("kubernetes_agent:task-1", "tool_calls")
    ]


async def test_a_root_checkpoint_stored_earlier_does_not_hold_writes_back(tmp_path: Path):
    db = tmp_path / "history.db"
    checkpoint = empty_checkpoint()
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        await saver.aput(root(), checkpoint, {}, {})
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:  # a restart
        await asyncio.wait_for(
            saver.aput_writes(child(checkpoint["id"]), [("tool_calls", [])], "x"), 5
        )
        await asyncio.wait_for(  # and a write of the root itself never waits
            saver.aput_writes(
                {"configurable": {**root()["configurable"], "checkpoint_id": checkpoint["id"]}},
                [("status", "processing")],
                "y",
            ),
            5,
        )
    assert len(query(db, "SELECT * FROM writes")) == 2


async def test_writes_of_a_root_not_seen_yet_share_one_lookup():
    """A subgraph's first steps come before its root checkpoint is stored: their writes
    wait for one database lookup of that root, not one each."""
    lookups: list[tuple[str, str]] = []
    answer = asyncio.Event()

    async def stored(thread_id: str, checkpoint_id: str) -> bool:
        lookups.append((thread_id, checkpoint_id))
        await answer.wait()
        return False

    order = RootOrder(stored)
    config = child("root-1")["configurable"]
    writes = [asyncio.create_task(order.wait(config)) for _ in range(10)]
    await asyncio.sleep(0.05)
    answer.set()
    await asyncio.sleep(0.05)
    assert lookups == [("t", "root-1")]
    assert not any(write.done() for write in writes)  # the root is not stored yet
    order.put("t", "root-1", stored=True)
    await asyncio.wait_for(asyncio.gather(*writes), 5)
    await order.wait(config)  # remembered: no lookup, no wait
    assert lookups == [("t", "root-1")]


async def test_a_failed_lookup_fails_the_writes_that_waited_for_it():
    async def stored(thread_id: str, checkpoint_id: str) -> bool:
        await asyncio.sleep(0.05)
        raise OSError("disk I/O error")

    order = RootOrder(stored)
    config = child("root-1")["configurable"]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(order.wait(config) for _ in range(3)), return_exceptions=True), 5
    )
    assert [str(outcome) for outcome in outcomes] == ["disk I/O error"] * 3
