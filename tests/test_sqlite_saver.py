"""The SQLite checkpointer stores each channel value once per version, reads back ordinary
checkpoints, converts databases written by LangGraph's stock saver, and deletes a thread's
values with it."""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import aiosqlite
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graph.checkpoints import CompressedSerde, open_checkpointer
from graph.sqlite_saver import BlobSqliteSaver

BIG = " ".join(str(n * 7919 % 100_003) for n in range(10_000))  # ~58 kB, never changed


class State(TypedDict, total=False):
    big: str
    step: int
    log: Annotated[list[int], operator.add]


def counting_graph(saver: Any, *, interrupt_after: list[str] | None = None) -> Any:
    def bump(state: State) -> dict[str, Any]:
        return {"step": state.get("step", 0) + 1, "log": [state.get("step", 0) + 1]}

    builder = StateGraph(State)
    for name in ("a", "b", "c", "d"):
        builder.add_node(name, bump)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder.compile(checkpointer=saver, interrupt_after=interrupt_after)


def config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def test_values_are_stored_once_per_version_and_read_back(tmp_path: Path):
    db = tmp_path / "history.db"
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph = counting_graph(saver)
        await graph.ainvoke({"big": BIG, "step": 0}, config("t1"))
        state = await graph.aget_state(config("t1"))
        history = [s async for s in graph.aget_state_history(config("t1"))]

    assert state.values == {"big": BIG, "step": 4, "log": [1, 2, 3, 4]}
    assert [s.values.get("step") for s in history] == [4, 3, 2, 1, 0, None]
    assert all(s.values.get("big") == BIG for s in history[:-1])
    # the big value was written once, although six checkpoints hold it
    assert query(db, "SELECT count(*) FROM checkpoint_blobs WHERE channel = 'big'") == [(1,)]
    assert query(db, "SELECT count(*) FROM checkpoints") == [(6,)]
    (largest,) = query(db, "SELECT max(length(checkpoint)) FROM checkpoints")[0]
    assert largest < 2000, "checkpoint rows keep versions only, not values"


async def test_a_database_of_the_stock_saver_is_converted_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    db = tmp_path / "history.db"
    async with aiosqlite.connect(db) as conn:
        stock = AsyncSqliteSaver(conn)
        stock.serde = CompressedSerde(stock.serde)
        graph = counting_graph(stock, interrupt_after=["b"])
        await graph.ainvoke({"big": BIG, "step": 0}, config("old"))
        await graph.ainvoke({"big": "other", "step": 10}, config("other"))
        before = [s.values async for s in graph.aget_state_history(config("old"))]
    assert query(db, "SELECT max(length(checkpoint)) FROM checkpoints")[0][0] > 2000

    monkeypatch.setattr(BlobSqliteSaver, "convert_chunk", 2)  # several chunks
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph = counting_graph(saver, interrupt_after=["b"])
        after = [s.values async for s in graph.aget_state_history(config("old"))]
        assert after == before
        other = await graph.aget_state(config("other"))
        assert other.values == {"big": "other", "step": 12, "log": [11, 12]}
        await graph.ainvoke(None, config("old"))  # resumes after the interrupt
        state = await graph.aget_state(config("old"))

    assert state.values == {"big": BIG, "step": 4, "log": [1, 2, 3, 4]}
    assert query(db, "SELECT max(length(checkpoint)) FROM checkpoints")[0][0] < 2000
    assert query(db, "PRAGMA user_version") == [(1,)]


async def test_deleting_a_thread_deletes_its_values(tmp_path: Path):
    db = tmp_path / "history.db"
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph = counting_graph(saver)
        await graph.ainvoke({"big": BIG, "step": 0}, config("gone"))
        await graph.ainvoke({"big": "kept", "step": 0}, config("kept"))
        await saver.adelete_thread("gone")
        kept = await graph.aget_state(config("kept"))

    assert query(db, "SELECT DISTINCT thread_id FROM checkpoint_blobs") == [("kept",)]
    assert kept.values["big"] == "kept"


async def test_large_values_are_compressed_once_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import threading

    calls: list[tuple[int, threading.Thread]] = []
    real = CompressedSerde.compress

    def compress(self: CompressedSerde, data: bytes) -> bytes:
        calls.append((len(data), threading.current_thread()))
        return real(self, data)

    monkeypatch.setattr(CompressedSerde, "compress", compress)

    def load(state: State) -> dict[str, Any]:
        return {"big": BIG, "step": 1}

    builder = StateGraph(State)
    builder.add_node("load", load)
    builder.add_edge(START, "load")
    builder.add_edge("load", END)
    db = tmp_path / "history.db"
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph_ = builder.compile(checkpointer=saver)
        await graph_.ainvoke({"step": 0}, config("t1"))
        state = await graph_.aget_state(config("t1"))

    assert state.values["big"] == BIG
    assert calls and all(thread is not threading.main_thread() for _, thread in calls)
    # the node's output is stored as its write and as the channel's value: compressed once
    assert len([size for size, _ in calls if size >= len(BIG)]) == 1
    stored = query(db, "SELECT type, length(blob) FROM checkpoint_blobs WHERE channel = 'big'")
    assert stored[0][0].startswith("zstd:") and stored[0][1] < len(BIG)
    written = query(db, "SELECT type FROM writes WHERE channel = 'big'")
    assert written == [(stored[0][0],)]


async def test_values_compressed_by_earlier_versions_still_load(tmp_path: Path):
    import sqlite3
    import zlib

    import zstandard

    db = tmp_path / "history.db"
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        await counting_graph(saver, interrupt_after=["b"]).ainvoke(
            {"big": BIG, "step": 0}, config("old")
        )
    # as an earlier version stored them: zlib, tagged "z:"
    with sqlite3.connect(db) as conn:
        for table, column in (("checkpoint_blobs", "blob"), ("writes", "value")):
            rows = conn.execute(
                f"SELECT rowid, type, {column} FROM {table} WHERE type LIKE 'zstd:%'"
            ).fetchall()
            assert rows, table
            for rowid, type_, data in rows:
                conn.execute(
                    f"UPDATE {table} SET type = ?, {column} = ? WHERE rowid = ?",
                    (
                        "z:" + type_.removeprefix("zstd:"),
                        zlib.compress(zstandard.decompress(data), 1),
                        rowid,
                    ),
                )

    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph = counting_graph(saver, interrupt_after=["b"])
        assert (await graph.aget_state(config("old"))).values["big"] == BIG
        await graph.ainvoke(None, config("old"))  # resumes after the interrupt
        state = await graph.aget_state(config("old"))

    assert state.values == {"big": BIG, "step": 4, "log": [1, 2, 3, 4]}


async def test_a_checkpoint_reads_as_the_stock_saver_reads_it_with_its_values(tmp_path: Path):
    """Latest or by id, with the pending writes of a step that failed half-way, in a
    subgraph's namespace too, or none for an unknown thread: what the stock saver reads
    from the same rows, plus the values it keeps in blobs."""

    class Fan(TypedDict, total=False):
        big: str
        log: Annotated[list[str], operator.add]

    def ok(state: Fan) -> dict[str, Any]:
        return {"log": ["ok"]}

    def boom(state: Fan) -> dict[str, Any]:
        raise RuntimeError("tool server gone")

    inner = StateGraph(State)
    inner.add_node("a", lambda state: {"step": state.get("step", 0) + 1})
    inner.add_edge(START, "a")
    inner.add_edge("a", END)
    builder = StateGraph(Fan)
    builder.add_node("inner", inner.compile())
    builder.add_node("ok", ok)
    builder.add_node("boom", boom)
    builder.add_edge(START, "inner")
    builder.add_edge("inner", "ok")
    builder.add_edge("inner", "boom")
    async with open_checkpointer(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}") as saver:
        assert isinstance(saver, BlobSqliteSaver)
        graph = builder.compile(checkpointer=saver)
        with pytest.raises(RuntimeError):
            await graph.ainvoke({"big": BIG}, config("t1"), subgraphs=True)
        await saver.aclose()  # every queued write committed, for the stock reads below
        ids = [
            (
                tup.config["configurable"]["checkpoint_ns"],
                tup.config["configurable"]["checkpoint_id"],
            )
            for tup in [t async for t in saver.alist(None)]
        ]
        namespaces = {ns for ns, _ in ids}
        configs: list[RunnableConfig] = [
            {"configurable": {"thread_id": "t1", "checkpoint_ns": ns, "checkpoint_id": id_}}
            for ns, id_ in ids
        ] + [{"configurable": {"thread_id": "t1", "checkpoint_ns": ns}} for ns in namespaces]
        configs.append({"configurable": {"thread_id": "unknown", "checkpoint_ns": ""}})
        for cfg in configs:
            ours = await saver.aget_tuple(cfg)
            stock = await AsyncSqliteSaver.aget_tuple(saver, cfg)
            if stock is None:
                assert ours is None, cfg
                continue
            assert ours is not None, cfg
            assert ours.config == stock.config
            assert ours.parent_config == stock.parent_config
            assert ours.metadata == stock.metadata
            assert ours.pending_writes == stock.pending_writes
            assert {**ours.checkpoint, "channel_values": {}} == stock.checkpoint
        latest = await saver.aget_tuple(config("t1"))

    assert len(namespaces) == 2, "the subgraph's checkpoints have a namespace of their own"
    assert latest is not None
    assert latest.checkpoint["channel_values"]["big"] == BIG
    written = {(channel, repr(value)) for _, channel, value in latest.pending_writes or []}
    assert ("log", "['ok']") in written, "the node that finished keeps its write"
    assert ("__error__", repr("RuntimeError('tool server gone')")) in written
