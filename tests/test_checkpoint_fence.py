"""A replica that has not noticed yet that another one took its session over adds nothing
to that session's checkpoints; its other sessions' checkpoints, those of sessions nobody
holds, and its own after it got the session back are written as before (SQLite and
PostgreSQL savers, fenced against the session index in the same database)."""

from __future__ import annotations

from typing import Any

from graph.checkpoints import open_checkpointer
from server.store import Store
from server.store.fencing import CheckpointFence
from tests.test_sqlite_saver import config, counting_graph


async def _session(store: Store, sid: str, **fields: Any) -> None:
    await store.create_session(
        session_id=sid, alert_id=f"alert-{sid}", alert_type="T", alert_data={}, **fields
    )


async def _checkpoints(saver: Any, thread: str) -> int:
    return len([c async for c in saver.alist(config(thread))])


async def test_checkpoints_of_a_session_another_replica_holds_are_not_written(db_url: str):
    store = await Store.open(db_url)
    try:
        await _session(store, "taken", owner="b", status="processing")
        await _session(store, "mine", owner="a", status="processing")
        await _session(store, "free", status="processing")
        fence = CheckpointFence("a")
        async with open_checkpointer(db_url, fence=fence) as saver:
            graph = counting_graph(saver)
            for thread in ("taken", "mine", "free", "not-a-session"):
                await graph.ainvoke({"step": 0}, config(thread))
            counts = {t: await _checkpoints(saver, t) for t in ("taken", "mine", "free")}
            assert counts == {"taken": 0, "mine": 6, "free": 6}
            assert await _checkpoints(saver, "not-a-session") == 6

            await store.update_session("taken", owner="a")  # a holds it again
            await graph.ainvoke({"step": 0}, config("taken"))
            assert await _checkpoints(saver, "taken") == 6
    finally:
        await store.close()
