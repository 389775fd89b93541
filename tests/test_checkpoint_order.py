"""A subgraph's checkpoint writes are stored after the root checkpoint they run under, so
a restart never resumes from an older root checkpoint while the subgraph's tool results
are stored (the agent would start again as a new task and call those tools again)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

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
