"""Two `sre-agent serve` processes (replicas) on one database, proven with real processes
(tests/soak/harness.py): a replica never runs a session another live replica runs (its
lease is renewed), and when that replica is killed the other one takes its sessions over
once their leases run out, resumes them from their last checkpoints and completes them,
without running again a tool call whose result was checkpointed. And a replica that stops
cleanly hands its sessions over at once; a replica that finds a session it runs taken
over (it could not renew the lease in time) stops running it, and until it finds out, its
writes for that session do not land (fencing)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from graph.events import EventType, make_event
from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from server import eventlog
from server.store import Store
from server.store.store import utcnow
from tests.fakes.chat_completions import FakeChatCompletions
from tests.integration.service_history import (
    announced_iterations,
    checkpointed_sessions,
    index_statuses,
    service_env,
)
from tests.pg import fresh_database
from tests.service.conftest import Service, serve, two_iterations
from tests.soak.harness import (
    Client,
    Script,
    ServiceProcess,
    alert,
    checkpointed_calls,
    executions,
    quiet_disconnects,
    read_call_log,
    write_config,
)

pytestmark = pytest.mark.timeout(240)

LEASE = 2.0


async def test_a_killed_replicas_sessions_are_taken_over_by_a_live_one(
    tmp_path: Path,
    history_url: str,
):
    url = history_url
    call_log = tmp_path / "mcp-calls.jsonl"
    keys = [f"ns-{n}" for n in range(6)]
    with FakeChatCompletions(Script(calls=(2, 1), tool_seconds=0.3), latency=0.3) as fake:
        quiet_disconnects(fake)
        replicas = []
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            config = write_config(workdir, call_log=call_log)
            env = service_env(
                fake,
                workdir,
                config,
                HISTORY_DATABASE_URL=url,
                MAX_CONCURRENT_ALERTS="2",
                REPLICA_ID=name,
                SESSION_LEASE_SECONDS=str(LEASE),
            )
            replicas.append(ServiceProcess(workdir, env))
        a, b = replicas
        try:
            await a.start()
            await b.start()
            sessions = {k: (await Client(a).submit(alert(k), k))["session_id"] for k in keys}
            ids = list(sessions.values())

            # Two leases' time with sessions in flight on a: b leaves them alone.
            await asyncio.sleep(2 * LEASE)
            assert "resuming session" not in b.log_path().read_text()
            assert (await Client(b).load())["running"] == 0

            deadline = time.monotonic() + 30
            while await checkpointed_sessions(a, ids) < 2:
                assert time.monotonic() < deadline, "no tool results were checkpointed in 30 s"
                await asyncio.sleep(0.05)
            await a.kill()
            killed_at = time.monotonic()
            at_kill = read_call_log(call_log)
            finished = await checkpointed_calls(url)
            statuses = await index_statuses(url)
            interrupted = [sid for sid in ids if statuses[sid] in ("queued", "processing")]
            assert interrupted, statuses

            final = await Client(b).wait_terminal(set(ids), limit=90)
            taken_over = b.log_path().read_text()
        finally:
            for replica in replicas:
                await replica.stop()

    assert [s["status"] for s in final] == ["completed"] * len(keys)
    for sid in interrupted:
        assert f"resuming session {sid} (" in taken_over
    assert time.monotonic() - killed_at > LEASE  # not before a's leases ran out
    assert set(map(tuple, (await announced_iterations(url, ids)).values())) == {(1, 2)}
    after = await checkpointed_calls(url)
    for key, sid in sessions.items():
        assert sorted(after[sid]) == [(key, 1, 1), (key, 1, 2), (key, 2, 1)]
    runs_at_kill, runs = executions(at_kill), executions(read_call_log(call_log))
    for call in {call for calls in finished.values() for call in calls}:
        assert runs_at_kill[call] == runs[call] == 1, call


async def test_a_replica_that_stops_cleanly_hands_its_sessions_over_at_once(
    tmp_path: Path,
):
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"

    def settings(replica: str) -> Settings:
        return Settings(
            _env_file=None,
            history_database_url=url,  # type: ignore[call-arg]
            replica_id=replica,
            session_lease_seconds=6,  # renewed and swept every 2 s
        )

    fast = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(settings("b"), fast) as b:
        slow = ScriptedChatModel(responder=two_iterations, latency=0.4)
        async with serve(settings("a"), slow) as a:
            accepted = await a.submit()
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(20):  # a is in its first iteration's partial analysis
                while not any(e["event"] == "partial_analysis" for e in seen):
                    seen = await a.events(accepted["alert_id"], limit=len(seen) + 1)
            # a runs it; b leaves it alone while a holds it (once a releases it on its way
            # out, b may take it over before a's shutdown is over)
            assert fast.requests == []
        stopped = time.monotonic()
        status = await b.wait_done(accepted["alert_id"], limit=20)
        assert time.monotonic() - stopped < 6  # released: no waiting for the lease to run out
        events = await b.events(accepted["alert_id"])
        listed = (await b.client.get(f"/api/v1/history/sessions/{accepted['session_id']}")).json()
    assert listed["replica"] == "b"  # who ran it last
    assert status["status"] == "completed"
    started = [e for e in events if e["event"] == "session_started"]
    assert [s["data"]["data"]["resumed"] for s in started] == [False, True]
    assert fast.requests  # b finished it


async def test_a_replica_whose_session_was_taken_over_stops_running_it(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    settings = replica_settings(url, "a", session_lease_seconds=3)  # renewed every second
    slow = ScriptedChatModel(responder=two_iterations, latency=0.4)
    async with serve(settings, slow) as a:
        accepted = await a.submit()
        await until_event(a, accepted["alert_id"], "partial_analysis")
        # a could not renew in time, and replica b took the session over
        store = await Store.open(url)
        try:
            await store.update_session(
                accepted["session_id"], owner="b", lease_expires_at=utcnow() + timedelta(60)
            )
        finally:
            await store.close()
        running = 1
        async with asyncio.timeout(10):
            while running:  # a's next renewal finds the session taken over
                await asyncio.sleep(0.1)
                running = (await a.client.get("/health")).json()["queue"]["running"]
        calls = len(slow.requests)
        await asyncio.sleep(1)
        assert len(slow.requests) == calls  # a stopped asking its model
        status = (await a.client.get(accepted["status_url"])).json()
        assert status["status"] == "processing"  # a ended nothing: b runs it

        # b finishes it; a answers for it from the database, its stream ends too
        stream = asyncio.create_task(a.events(accepted["alert_id"]))
        store = await Store.open(url)
        try:
            last = await store.last_seq(accepted["session_id"])
            ending = make_event(EventType.SESSION_COMPLETED, agent="kubernetes")
            await store.insert_events({accepted["session_id"]: [(last + 1, ending)]})
            await store.update_session(accepted["session_id"], status="completed", progress=100)
        finally:
            await store.close()
        events = await asyncio.wait_for(stream, 10)
        status = (await a.client.get(accepted["status_url"])).json()
    assert events[-1]["event"] == "session_completed"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert status["status"] == "completed"


async def test_a_replica_that_has_not_noticed_a_takeover_yet_writes_nothing_over_it(
    tmp_path: Path,
):
    """Between a takeover and its next renewal, a replica still runs the session: its
    status and its events must not land over the new holder's (fencing)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    # next renewal in 40 s: after the run ends
    settings = replica_settings(url, "a", session_lease_seconds=120)
    async with serve(settings, ScriptedChatModel(responder=two_iterations, latency=0.3)) as a:
        accepted = await a.submit()
        sid = accepted["session_id"]
        await until_event(a, accepted["alert_id"], "iteration_started")
        store = await Store.open(url)
        try:
            await store.update_session(
                sid, owner="b", lease_expires_at=utcnow() + timedelta(minutes=5)
            )
            taken_at = await store.last_seq(sid)
            before = await store.get_session(sid)  # "processing" may not be written yet
            checkpoints_at = _checkpoints(tmp_path / "history.db", sid)
            running = 1
            async with asyncio.timeout(20):
                while running:  # a runs it to its end, unaware
                    await asyncio.sleep(0.1)
                    running = (await a.client.get("/health")).json()["queue"]["running"]
            await asyncio.sleep(0.5)  # anything a still had to write
            record = await store.get_session(sid)
            stored = await store.events_after(sid)
        finally:
            await store.close()
    assert record is not None and before is not None
    assert (record.status, record.owner, record.result) == (before.status, "b", None)
    assert record.status in ("queued", "processing")
    assert [seq for seq, _ in stored] == list(range(1, taken_at + 1))  # none since
    assert _checkpoints(tmp_path / "history.db", sid) == checkpoints_at  # its history too


def replica_settings(url: str, name: str, **settings: Any) -> Settings:
    """An in-process service's settings: replica `name` on the database at `url`."""
    return Settings(
        _env_file=None,
        history_database_url=url,  # type: ignore[call-arg]
        replica_id=name,
        **settings,
    )


async def until_event(service: Service, alert_id: str, event: str) -> None:
    """Read the session's stream until `event` has come (at most 20 s)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while not any(e["event"] == event for e in seen):
            seen = await service.events(alert_id, limit=len(seen) + 1)


def _checkpoints(db: Path, thread_id: str) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    return int(count)


@pytest.mark.postgres
async def test_a_stream_from_another_replica_follows_the_session_live_on_postgres(
    monkeypatch: pytest.MonkeyPatch,
):
    """Behind a load balancer, the stream may be asked of a replica that does not run the
    session: on PostgreSQL it follows the events as the running replica stores them."""
    monkeypatch.setattr(eventlog, "_DB_POLL_SECONDS", 120.0)  # polling alone would stall

    with fresh_database() as url:
        model = ScriptedChatModel(responder=two_iterations, latency=0.3)
        async with (
            serve(replica_settings(url, "a"), model) as a,
            serve(replica_settings(url, "b"), ScriptedChatModel(responder=two_iterations)) as b,
        ):
            accepted = await a.submit()
            streamed = await asyncio.wait_for(b.events(accepted["alert_id"]), 30)
            direct = await a.events(accepted["alert_id"])
            assert not b.model.requests  # b ran nothing: it followed a
    assert streamed[-1]["event"] == "session_completed"
    assert [(e["id"], e["event"]) for e in streamed] == [(e["id"], e["event"]) for e in direct]
