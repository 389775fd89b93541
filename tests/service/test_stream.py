"""Alerts in, live SSE out: order, fan-out, resume, late subscribers, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from langchain_core.messages import AIMessage
from sqlalchemy import text
from sqlalchemy.engine import Connection

from graph.scripted_model import ModelRequest, ScriptedChatModel
from graph.settings import Settings
from tests.service.conftest import Service, serve, two_iterations


async def test_alert_streams_to_completion_in_order(service: Service):
    accepted = await service.submit()
    assert set(accepted) >= {"alert_id", "session_id", "status_url", "events_url"}
    events = await service.events(accepted["alert_id"])

    kinds = [e["event"] for e in events]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert kinds[:4] == [
        "session_started",
        "agent_selected",
        "runbook_fetched",
        "iteration_started",
    ]
    assert kinds[-2:] == ["final_analysis", "session_completed"]
    assert kinds.count("iteration_started") == 2
    tool_events = [e["data"] for e in events if e["event"].startswith("tool_call")]
    assert len(tool_events) == 6  # 3 calls, started and finished
    assert {(e["agent"], e["iteration"]) for e in tool_events} == {
        ("kubernetes", 1),
        ("kubernetes", 2),
    }
    assert all(e["data"]["type"] == e["event"] for e in events)

    status = (await service.client.get(accepted["status_url"])).json()
    assert status["status"] == "completed" and status["progress"] == 100
    assert status["current_agent"] == "kubernetes"
    assert status["assigned_mcp_servers"] == ["ops"]
    assert "## Root cause" in status["result"]


async def test_two_subscribers_see_the_same_events(service: Service):
    accepted = await service.submit()
    first, second = await asyncio.gather(
        service.events(accepted["alert_id"]), service.events(accepted["alert_id"])
    )
    assert first == second
    assert first[-1]["event"] == "session_completed"


async def test_last_event_id_resumes_after_it(service: Service):
    accepted = await service.submit()
    head = await service.events(accepted["alert_id"], limit=3)
    rest = await service.events(accepted["alert_id"], last_event_id=head[-1]["id"])
    everything = await service.events(accepted["alert_id"])
    assert [e["id"] for e in head] == [1, 2, 3]
    assert rest[0]["id"] == 4
    assert head + rest == everything


async def test_late_subscriber_gets_the_whole_stream(service: Service):
    accepted = await service.submit()
    await service.wait_done(accepted["alert_id"])
    late = await service.events(accepted["alert_id"])
    assert late[0]["event"] == "session_started" and late[0]["id"] == 1
    assert late[-1]["event"] == "session_completed"  # and the stream closed after it


async def test_disconnecting_does_not_cancel_the_investigation(service: Service):
    accepted = await service.submit()
    first = await service.events(accepted["alert_id"], limit=1)  # then hang up
    assert first[0]["event"] == "session_started"
    status = await service.wait_done(accepted["alert_id"])
    assert status["status"] == "completed"


async def test_bad_last_event_id_is_a_400(service: Service):
    accepted = await service.submit()
    response = await service.client.get(
        f"/alerts/{accepted['alert_id']}/events", headers={"Last-Event-ID": "abc"}
    )
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["detail"]


async def test_stream_ends_even_if_a_crash_lost_the_terminal_event(service: Service):
    accepted = await service.submit()
    await service.wait_done(accepted["alert_id"])
    runtime = service.app.state.runtime
    sid = accepted["session_id"]
    # simulate a crash between the index write and the event write: the stored log lacks
    # its terminal event, and no worker here runs the session any more
    await runtime.events.flush()  # the background writer has stored every event
    assert await runtime.store.write(_delete_terminal_event, sid) == 1
    runtime.events._live.pop(sid, None)

    streamed = await asyncio.wait_for(service.events(accepted["alert_id"]), 10)
    assert streamed[-1]["event"] == "session_completed"
    assert streamed[-1]["data"]["data"]["recovered"] is True
    assert [e["id"] for e in streamed] == list(range(1, len(streamed) + 1))


async def test_a_retried_model_step_announces_its_iteration_once(
    make_settings: Callable[..., Settings],
):
    failed: list[int] = []

    def flaky(request: ModelRequest) -> AIMessage:
        if not failed and request.structured_output is None:
            failed.append(1)
            raise TimeoutError("the provider timed out")  # transient: the node is retried
        return two_iterations(request)

    async with serve(make_settings(), ScriptedChatModel(responder=flaky)) as service:
        accepted = await service.submit()
        events = await service.events(accepted["alert_id"])
    assert failed == [1] and events[-1]["event"] == "session_completed"
    iterations = [e["data"]["iteration"] for e in events if e["event"] == "iteration_started"]
    assert iterations == [1, 2]


def _delete_terminal_event(conn: Connection, session_id: str) -> int:
    statement = text("DELETE FROM sre_events WHERE session_id = :s AND type = 'session_completed'")
    return conn.execute(statement, {"s": session_id}).rowcount
