"""History from checkpoints: the session index, timelines, checkpoints, replay, and
sessions resuming after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graph.alert import Alert
from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from server.manager import INTERRUPTED
from server.runtime import open_runtime
from server.store import Store
from tests.conftest import ops_app_config
from tests.service.conftest import ALERT, Service, serve, two_iterations

HISTORY = "/api/v1/history/sessions"


async def test_session_list_filters_and_pagination(service: Service):
    done = []
    for alert in (
        ALERT,
        ALERT,
        {**ALERT, "alert_type": "DiskFull"},
        {**ALERT, "alert_type": "OtherAlert"},
    ):
        accepted = await service.submit(alert)
        await service.wait_done(accepted["alert_id"])
        done.append(accepted["session_id"])

    async def ids(**params: object) -> list[str]:
        response = await service.client.get(HISTORY, params=params)
        assert response.status_code == 200, response.text
        return [s["session_id"] for s in response.json()["sessions"]]

    assert await ids() == done[::-1]  # newest first
    assert await ids(status="failed") == [done[2]]
    assert await ids(alert_type="NamespaceTerminating") == done[1::-1]
    assert await ids(agent_type="other") == [done[3]]
    assert await ids(agent_type="kubernetes", status="completed") == done[1::-1]
    assert await ids(agent_type="kubernetes", status="failed") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(start_date=future) == []
    assert await ids(end_date=future, alert_type="DiskFull") == [done[2]]

    page = (await service.client.get(HISTORY, params={"page": 2, "page_size": 3})).json()
    assert page["total"] == 4 and page["pages"] == 2
    assert [s["session_id"] for s in page["sessions"]] == [done[0]]
    assert (await service.client.get(HISTORY, params={"page_size": 1000})).status_code == 422
    assert (await service.client.get(HISTORY, params={"status": "nope"})).status_code == 422


async def test_timeline_of_a_two_iteration_session(service: Service):
    accepted = await service.submit()
    await service.wait_done(accepted["alert_id"])
    session = (await service.client.get(accepted["session_url"])).json()

    assert session["status"] == "completed" and session["iterations"] == 2
    assert session["tokens"] > 0 and session["duration_ms"] > 0
    assert session["analysis"]["root_cause"] == "finalizer"
    steps = [(e["type"], e.get("step"), e.get("tool")) for e in session["timeline"]]
    llm = [s for t, s, _ in steps if t == "llm_interaction"]
    assert llm == [
        "select_tools",
        "partial_analysis",
        "select_tools",
        "partial_analysis",
        "final_analysis",
    ]
    assert [tool for t, _, tool in steps if t == "mcp_communication"][2] == "slow"
    assert steps[0] == ("llm_interaction", "select_tools", None)
    assert {tool for _, _, tool in steps[1:3]} == {"get_namespace", "list_pods"}
    stamps = [e["timestamp"] for e in session["timeline"]]
    assert stamps == sorted(stamps)

    select = session["timeline"][0]
    assert select["messages"][0]["role"] == "system"
    assert "Namespace billing stuck" in select["messages"][1]["content"]
    assert [c["name"] for c in select["tool_calls"]] == ["get_namespace", "list_pods"]
    assert select["token_usage"]["total_tokens"] > 0 and select["model"] == "scripted:test"
    mcp = next(e for e in session["timeline"] if e.get("tool") == "get_namespace")
    assert mcp["server"] == "ops" and mcp["arguments"] == {"name": "billing"}
    assert mcp["success"] is True and "Terminating" in mcp["result"]


async def test_checkpoints_cover_orchestrator_and_agent(service: Service):
    accepted = await service.submit()
    await service.wait_done(accepted["alert_id"])
    listing = (await service.client.get(f"{HISTORY}/{accepted['session_id']}/checkpoints")).json()[
        "checkpoints"
    ]
    graphs = {c["graph"] for c in listing}
    assert graphs == {"orchestrator", "kubernetes_agent"}
    nodes = [c["node"] for c in listing if c["graph"] == "kubernetes_agent"]
    assert nodes == [
        "__start__",
        "select_tools",
        "execute_tools",
        "partial_analysis",
        "select_tools",
        "execute_tools",
        "partial_analysis",
        "final_analysis",
        None,
    ]
    second = [c for c in listing if c["node"] == "select_tools"][1]
    assert second["summary"] == "iteration 2: chose slow" and second["replayable"]
    assert listing[-1]["replayable"] is False


async def test_replay_from_mid_session_reruns_only_later_steps(service: Service):
    original = await service.submit()
    await service.wait_done(original["alert_id"])
    sid = original["session_id"]
    before = (await service.client.get(f"{HISTORY}/{sid}")).json()["timeline"]
    checkpoints = (await service.client.get(f"{HISTORY}/{sid}/checkpoints")).json()
    fork = [c for c in checkpoints["checkpoints"] if c["node"] == "select_tools"][1]
    calls_before = len(service.model.requests)

    response = await service.client.post(
        f"{HISTORY}/{sid}/replay",
        json={
            "checkpoint_id": fork["checkpoint_id"],
            "state_changes": {"notes": "EDITED: the controller was uninstalled"},
        },
    )
    assert response.status_code == 202, response.text
    replay = response.json()
    events = await service.events(replay["alert_id"])
    assert events[-1]["event"] == "session_completed"
    assert [e["data"]["iteration"] for e in events if e["event"] == "iteration_started"] == [2]
    assert not [e for e in events if e["event"] in ("agent_selected", "runbook_fetched")]

    new_calls = service.model.requests[calls_before:]
    assert "Iteration 2" not in new_calls[0].text and "iteration 2 of at most" in new_calls[0].text
    assert "EDITED: the controller was uninstalled" in new_calls[0].text
    assert len(new_calls) == 3  # select 2, partial 2, final

    session = (await service.client.get(f"{HISTORY}/{replay['session_id']}")).json()
    assert session["parent_session_id"] == sid
    assert session["parent_checkpoint_id"] == fork["checkpoint_id"]
    inherited = [e for e in session["timeline"] if e["inherited"]]
    fresh = [e for e in session["timeline"] if not e["inherited"]]
    assert [e.get("step") for e in inherited if e["type"] == "llm_interaction"] == [
        "select_tools",
        "partial_analysis",
    ]
    assert [e.get("step") for e in fresh if e["type"] == "llm_interaction"] == [
        "select_tools",
        "partial_analysis",
        "final_analysis",
    ]
    after = (await service.client.get(f"{HISTORY}/{sid}")).json()["timeline"]
    assert after == before  # the original's timeline is intact

    bad = await service.client.post(
        f"{HISTORY}/{sid}/replay",
        json={"checkpoint_id": fork["checkpoint_id"], "state_changes": {"nonsense": 1}},
    )
    assert bad.status_code == 422 and "nonsense" in bad.json()["detail"]
    end = checkpoints["checkpoints"][-1]["checkpoint_id"]
    final = await service.client.post(f"{HISTORY}/{sid}/replay", json={"checkpoint_id": end})
    assert final.status_code == 409


async def test_restart_resumes_an_interrupted_session(make_settings: Callable[..., Settings]):
    settings = make_settings()
    slow = ScriptedChatModel(responder=two_iterations, latency=0.4)
    async with serve(settings, slow) as service:
        accepted = await service.submit()
        seen = []
        async with asyncio.timeout(20):
            while not any(e["event"] == "partial_analysis" for e in seen):
                seen = await service.events(accepted["alert_id"], limit=len(seen) + 1)
        status = (await service.client.get(accepted["status_url"])).json()
        assert status["status"] == "processing"
    # the service stopped mid-investigation; a new one picks the session up
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(settings, model) as service:
        status = await service.wait_done(accepted["alert_id"])
        assert status["status"] == "completed"
        events = await service.events(accepted["alert_id"])
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    started = [e for e in events if e["event"] == "session_started"]
    assert [s["data"]["data"]["resumed"] for s in started] == [False, True]
    # iteration 1's tools ran once; the resumed run went on from its checkpoint
    refs = [e["data"]["data"]["ref"] for e in events if e["event"] == "tool_call_started"]
    assert refs.count("T1.1") == 1 and refs.count("T1.2") == 1 and "T2.1" in refs
    assert not any("iteration 1 of at most" in r.text for r in model.requests)


async def test_a_session_that_cannot_be_resumed_fails_and_the_others_resume(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings()
    slow = ScriptedChatModel(responder=two_iterations, latency=0.4)
    async with serve(settings, slow) as service:
        first = await service.submit()
        second = await service.submit({**ALERT, "namespace": "payments"})
        for accepted in (first, second):
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while not any(e["event"] == "partial_analysis" for e in seen):
                    seen = await service.events(accepted["alert_id"], limit=len(seen) + 1)
    broken = first["session_id"]

    def unreadable(method: Any) -> Any:
        async def aget_tuple(self: Any, config: Any) -> Any:
            if config["configurable"]["thread_id"] == broken:
                raise RuntimeError("checkpoint unreadable")
            return await method(self, config)

        return aget_tuple

    for saver in savers():
        monkeypatch.setattr(saver, "aget_tuple", unreadable(saver.aget_tuple))
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(settings, model) as service:
        failed = await service.wait_done(first["alert_id"])
        completed = await service.wait_done(second["alert_id"])
        events = await service.events(first["alert_id"])
    assert failed["status"] == "failed"
    assert "cannot resume after a restart" in failed["error"]
    assert "checkpoint unreadable" in failed["error"]
    assert events[-1]["event"] == "session_failed"
    assert completed["status"] == "completed"


def savers() -> list[type]:
    """The checkpointer classes the service may use here."""
    from graph.sqlite_saver import BlobSqliteSaver

    found: list[type] = [BlobSqliteSaver]
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        return found
    return [*found, AsyncPostgresSaver]


async def test_retention_prunes_old_sessions_with_their_events_and_checkpoints(service: Service):
    old, recent = await service.submit(), await service.submit()
    for accepted in (old, recent):
        await service.wait_done(accepted["alert_id"])
    runtime = service.app.state.runtime
    await runtime.store.update_session(
        old["session_id"], started_at=datetime.now(UTC) - timedelta(days=120)
    )

    assert await runtime.investigations.prune(90) == 1

    assert (await service.client.get(f"{HISTORY}/{old['session_id']}")).status_code == 404
    assert await runtime.store.events_after(old["session_id"]) == []
    assert [
        t async for t in runtime.saver.alist({"configurable": {"thread_id": old["session_id"]}})
    ] == []
    kept = (await service.client.get(f"{HISTORY}/{recent['session_id']}")).json()
    assert kept["status"] == "completed" and kept["timeline"]


async def test_a_command_line_session_is_never_resumed_by_the_service(
    make_settings: Callable[..., Settings],
):
    """A CLI run and a service may share a database: the service must not run the CLI's
    session (it may still be running there, with the CLI's configuration)."""
    settings = make_settings()
    cli_model = ScriptedChatModel(responder=two_iterations, latency=30)  # still thinking
    alert = Alert.model_validate({"alert_type": "NamespaceTerminating", "message": "stuck"})
    async with open_runtime(
        settings,
        registry=AgentRegistry(ops_app_config()),
        chat_model=(ModelChoice("scripted", "cli"), cli_model),
        recover=False,
    ) as cli:
        state, _ = await cli.investigations.submit(alert, source="cli")
        record = await cli.investigations.sessions.record(state.session_id)
        assert record is not None and record.session_metadata == {"resumable": False}

        model = ScriptedChatModel(responder=two_iterations, latency=0.02)
        async with serve(settings, model) as service:
            investigations = service.app.state.runtime.investigations
            await asyncio.wait_for(investigations.recovered.wait(), 20)  # start-up recovery done
            status = (await service.client.get(f"/processing-status/{state.alert_id}")).json()
            assert status["status"] == "processing"  # the CLI's, untouched
            assert model.requests == []  # the service did not run it

    store = await Store.open(settings.history_database_url)  # the CLI stopped: interrupted
    try:
        record = await store.get_session(state.session_id)
    finally:
        await store.close()
    assert record is not None
    assert (record.status, record.error_message) == ("failed", INTERRUPTED)
