"""The event log writes the events of many sessions in one transaction; a session whose
events cannot be written holds up no other, keeps its events in memory, and they are
written once the database takes them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from server.eventlog import EventLog
from server.store import Store


async def test_a_batch_of_many_sessions_is_stored_and_a_retried_one_is_harmless(store: Store):
    batches = {f"s{n}": [(1, {"type": "a", "n": n}), (2, {"type": "b", "n": n})] for n in range(30)}
    await store.insert_events(batches)
    await store.insert_events({"s3": [(2, {"type": "again"}), (3, {"type": "c"})]})
    for n in range(30):
        stored = await store.events_after(f"s{n}")
        expected = [(1, "a"), (2, "b")] + ([(3, "c")] if n == 3 else [])
        assert [(seq, event["type"]) for seq, event in stored] == expected


class Refusing(Store):
    """A store that cannot write the events of the sessions in `refused`."""

    refused: set[str]

    async def insert_events(
        self, batches: Mapping[str, list[tuple[int, dict[str, Any]]]], *, holder: str | None = None
    ) -> None:
        if self.refused & set(batches):
            raise RuntimeError("disk full")
        await super().insert_events(batches, holder=holder)


@contextlib.asynccontextmanager
async def refusing_log(db_url: str, refused: set[str]) -> AsyncIterator[tuple[Refusing, EventLog]]:
    """An event log writing to a store that refuses the events of the sessions `refused`
    (the test may change that set)."""
    store = await Refusing.open(db_url)
    assert isinstance(store, Refusing)
    store.refused = refused
    log = EventLog(store)
    await log.start()
    try:
        yield store, log
    finally:
        await log.aclose()
        await store.close()


async def test_a_session_that_cannot_be_written_holds_up_no_other(db_url: str):
    async with refusing_log(db_url, {"bad"}) as (store, log):
        for sid in ("bad", "good1", "good2"):
            await log.open(sid, new=True)
        for n in range(3):
            for sid in ("bad", "good1", "good2"):
                await log.append(sid, {"type": "x", "n": n})
        await asyncio.sleep(0.2)
        for sid in ("good1", "good2"):
            assert [seq for seq, _ in await store.events_after(sid)] == [1, 2, 3]
        assert await store.events_after("bad") == []
        assert log.write_error == "RuntimeError: disk full"
        assert [e["n"] for e in await log.past("bad")] == [0, 1, 2]  # still readable

        store.refused = set()  # the database takes them again
        await log.append("bad", {"type": "session_completed"})
        await asyncio.sleep(0.2)
        assert [seq for seq, _ in await store.events_after("bad")] == [1, 2, 3, 4]
        assert log.write_error is None


async def test_events_the_database_refused_are_written_once_it_takes_them_again(db_url: str):
    """A session's last events (its terminal one, after which it has no other to carry
    them) reach the database once it is back, with nothing else appended meanwhile."""
    async with refusing_log(db_url, {"s"}) as (store, log):
        await log.open("s", new=True)
        await log.append("s", {"type": "x"})
        await log.append("s", {"type": "session_completed"})
        await asyncio.sleep(0.8)  # refused, and refused again
        assert await store.events_after("s") == [] and log.write_error is not None

        store.refused = set()
        for _ in range(200):  # written again within 5 s
            if log.write_error is None:
                break
            await asyncio.sleep(0.05)
        stored = await store.events_after("s")
        assert [(seq, event["type"]) for seq, event in stored] == [
            (1, "x"),
            (2, "session_completed"),
        ]
