"""The session index in memory: what a session that leaves memory takes with it, and
which state of a session wins when the index is read while it is taken up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from server.session_index import SessionIndex
from server.sessions import SessionState
from server.store import SessionRecord


def session(session_id: str) -> SessionState:
    return SessionState(session_id=session_id, alert_id=f"alert-{session_id}", alert_type="T")


async def test_a_forgotten_session_takes_its_keys_but_not_a_newer_sessions():
    index = SessionIndex(None)
    try:
        older, newer = session("s1"), session("s2")
        await index.create(older, {}, idempotency_key="k1", fingerprint="fp")
        await index.create(newer, {}, idempotency_key="k2", fingerprint="fp")  # fired again

        index.forget("s1")
        assert await index.for_key("k1") is None
        assert await index.for_key("k2") is newer
        assert await index.for_fingerprint("fp") is newer  # the fingerprint is the newer's now

        index.forget("s2")
        assert await index.for_key("k2") is None
        assert await index.for_fingerprint("fp") is None
        assert len(index) == 0
    finally:
        await index.aclose()


class SlowIndex:
    """The store's session reads, answering only when `release` is set."""

    def __init__(self, record: SessionRecord) -> None:
        self.record, self.release = record, asyncio.Event()

    async def get_session(self, session_id: str) -> SessionRecord | None:
        await self.release.wait()
        return self.record if session_id == self.record.session_id else None

    async def get_session_by_alert_id(self, alert_id: str) -> SessionRecord | None:
        await self.release.wait()
        return self.record if alert_id == self.record.alert_id else None


async def test_a_read_from_the_index_does_not_replace_a_session_taken_up_meanwhile():
    # A status request reads an unfinished session from the index just as the recovery
    # after a restart takes it up: the request must see what the worker does to it.
    at = datetime.now(UTC)
    record = SessionRecord(
        session_id="s1", alert_id="a1", alert_type="T", status="processing",
        started_at=at, updated_at=at,
    )  # fmt: skip
    store = SlowIndex(record)
    index = SessionIndex(store)  # type: ignore[arg-type]
    try:
        by_id = asyncio.create_task(index.get("s1"))
        by_alert = asyncio.create_task(index.for_alert("a1"))
        await asyncio.sleep(0.01)  # both are reading the index
        resumed = index.remember(record)  # the recovery
        resumed.status = "completed"  # the worker finished it
        store.release.set()
        assert await by_id is resumed and await by_alert is resumed
        assert (await index.get("s1")).status == "completed"
    finally:
        await index.aclose()
