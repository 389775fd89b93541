"""Session leases in the index (SQLite and PostgreSQL): a replica claims only the
unfinished sessions nobody holds, never one another live replica holds, and only once;
renewing reports the sessions another replica took over; releasing frees them at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from server.store import Store
from server.store.leases import Leases
from server.store.store import utcnow


async def session(store: Store, sid: str, **fields: object) -> None:
    await store.create_session(
        session_id=sid, alert_id=f"alert-{sid}", alert_type="T", alert_data={}, **fields
    )


async def test_a_replica_claims_only_what_nobody_holds(store: Store):
    a, b = Leases(store, "a", 30), Leases(store, "b", 30)
    await session(store, "unowned")  # written before leases, or released
    await session(store, "a-live", owner="a", lease_expires_at=a.expiry())
    await session(store, "b-live", owner="b", lease_expires_at=b.expiry())
    await session(store, "b-dead", owner="b", lease_expires_at=utcnow() - timedelta(seconds=1))
    await session(store, "a-done", owner=None, status="completed")

    assert [r.session_id for r in await a.claim(unless=lambda r: True)] == []
    claimed = await a.claim()
    assert sorted(r.session_id for r in claimed) == ["a-live", "b-dead", "unowned"]
    assert all(r.owner == "a" and r.lease_expires_at is not None for r in claimed)
    stored = await store.get_session("b-dead")
    assert stored is not None and stored.owner == "a"
    assert await a.claim(besides={"a-live", "b-dead", "unowned"}) == []
    assert [r.session_id for r in await b.claim()] == ["b-live"]  # its own, still held


async def test_two_replicas_claiming_at_once_never_share_a_session(store: Store):
    for n in range(20):
        await session(store, f"s{n}")
    replicas = [Leases(store, name, 30) for name in "abc"]
    results = await asyncio.gather(*(r.claim() for r in replicas))
    claimed = [record.session_id for result in results for record in result]
    assert sorted(claimed) == sorted(f"s{n}" for n in range(20))  # each once


async def test_renewing_reports_what_another_replica_took_over(store: Store):
    a, b = Leases(store, "a", 30), Leases(store, "b", 30)
    expired = utcnow() - timedelta(seconds=1)
    await session(store, "kept", owner="a", lease_expires_at=expired)
    await session(store, "lost", owner="a", lease_expires_at=expired)
    # a could not renew for a while: b takes over one of them (it leaves the other alone)
    assert [r.session_id for r in await b.claim(besides={"kept"})] == ["lost"]
    assert await a.renew({"kept", "lost"}) == {"lost"}
    kept = await store.get_session("kept")
    assert kept is not None and kept.owner == "a" and kept.lease_expires_at is not None
    assert kept.lease_expires_at > utcnow() + timedelta(seconds=20)  # renewed
    assert await b.claim(besides={"lost"}) == []  # held again


async def test_released_sessions_are_claimed_at_once(store: Store):
    a, b = Leases(store, "a", 30), Leases(store, "b", 30)
    await session(store, "s1", owner="a", lease_expires_at=a.expiry())
    await session(store, "s2", owner="a", lease_expires_at=a.expiry(), status="completed")
    assert await b.claim() == []
    await a.release()
    assert [r.session_id for r in await b.claim()] == ["s1"]
    done = await store.get_session("s2")
    assert done is not None and done.owner == "a"  # finished sessions are left as they were


async def test_a_sweep_leaves_the_sessions_a_replica_holds_unread(store: Store):
    a = Leases(store, "a", 30)
    await session(store, "a-live", owner="a", lease_expires_at=a.expiry())
    await session(store, "a-dead", owner="a", lease_expires_at=utcnow() - timedelta(seconds=1))
    await session(store, "unowned")
    swept = await a.claim(own=False)  # later sweeps: what it holds, it runs
    assert sorted(r.session_id for r in swept) == ["a-dead", "unowned"]
    at_start_up = await a.claim()  # an earlier life's sessions under the same id: all
    assert [r.session_id for r in at_start_up] == ["a-live", "a-dead", "unowned"]


async def test_writes_for_a_session_another_replica_holds_are_fenced(store: Store):
    """A replica that has not noticed yet that its session was taken over (it renews every
    third of a lease) writes neither its status nor its events over the new holder's."""
    b = Leases(store, "b", 30)
    await session(store, "taken", owner="b", lease_expires_at=b.expiry(), status="processing")
    await session(store, "mine", owner="a", lease_expires_at=b.expiry(), status="processing")
    await session(store, "free", status="processing")  # released, or written before leases
    await session(store, "done-by-b", owner="b", status="completed")
    everyone = ["taken", "mine", "free", "done-by-b"]

    update = {"status": "completed", "progress": 100}
    missing = await store.update_sessions(dict.fromkeys(everyone, update), holder="a")
    assert missing == ["taken"]
    for sid in everyone:
        stored = await store.get_session(sid)
        assert stored is not None
        assert stored.status == ("processing" if sid == "taken" else "completed"), sid

    await store.insert_events({sid: [(1, {"type": "x"})] for sid in everyone}, holder="a")
    assert [sid for sid in everyone if await store.last_seq(sid)] == ["mine", "free", "done-by-b"]

    # the holder itself, and writers that hold no leases (the command line), are not fenced
    await store.insert_events({"taken": [(1, {"type": "x"})]}, holder="b")
    assert await store.update_sessions({"taken": {"progress": 50}}) == []
    stored = await store.get_session("taken")
    assert stored is not None and stored.progress == 50 and await store.last_seq("taken") == 1
