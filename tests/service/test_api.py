"""The HTTP API's contract: validation, unknown ids, idempotency, alert types, health,
back-pressure, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from tests.service.conftest import ALERT, Service, serve, two_iterations


async def test_invalid_alert_is_422_naming_the_field(service: Service):
    response = await service.client.post("/alerts", json={"alert_type": "NamespaceTerminating"})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "body.message: Field required"
    assert body["detail"][0]["loc"] == ["body", "message"]

    response = await service.client.post("/alerts", json={**ALERT, "message": "x" * 20_000})
    assert response.status_code == 422
    assert "body.message" in response.json()["message"]

    response = await service.client.post(
        "/alerts", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_extra_alert_fields_are_kept(service: Service):
    accepted = await service.submit({**ALERT, "labels": {"team": "billing"}, "ticket": "INC-1"})
    await service.wait_done(accepted["alert_id"])
    session = (await service.client.get(accepted["session_url"])).json()
    assert session["alert_data"]["labels"] == {"team": "billing"}
    assert session["alert_data"]["ticket"] == "INC-1"


@pytest.mark.parametrize(
    "path",
    [
        "/processing-status/nope",
        "/alerts/nope/events",
        "/api/v1/history/sessions/nope",
        "/api/v1/history/sessions/nope/checkpoints",
    ],
)
async def test_unknown_ids_are_404(service: Service, path: str):
    response = await service.client.get(path)
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


async def test_replay_of_unknown_session_or_checkpoint_is_404(service: Service):
    response = await service.client.post(
        "/api/v1/history/sessions/nope/replay", json={"checkpoint_id": "x"}
    )
    assert response.status_code == 404
    accepted = await service.submit()
    await service.wait_done(accepted["alert_id"])
    response = await service.client.post(
        f"/api/v1/history/sessions/{accepted['session_id']}/replay", json={"checkpoint_id": "x"}
    )
    assert response.status_code == 404
    assert "unknown checkpoint 'x'" in response.json()["detail"]


async def test_idempotency_key_returns_the_same_session(service: Service):
    first = await service.submit(**{"Idempotency-Key": "am-123"})
    second_response = await service.client.post(
        "/alerts", json=ALERT, headers={"Idempotency-Key": "am-123"}
    )
    assert second_response.status_code == 200
    assert second_response.json()["session_id"] == first["session_id"]
    other = await service.submit(**{"Idempotency-Key": "am-456"})
    assert other["session_id"] != first["session_id"]


async def test_a_service_of_one_process_keeps_the_alerts_connection_open(service: Service):
    """Only with workers does an alert's answer end its connection (test_workers.py)."""
    response = await service.client.post("/alerts", json=ALERT)
    assert response.status_code == 202
    assert "connection" not in response.headers


async def test_unknown_alert_type_session_fails_with_reason(service: Service):
    accepted = await service.submit({**ALERT, "alert_type": "DiskFull"})
    events = await service.events(accepted["alert_id"])
    assert events[-1]["event"] == "session_failed"
    assert events[-1]["data"]["data"]["error"] == "No specialized agent for alert type 'DiskFull'"
    status = (await service.client.get(accepted["status_url"])).json()
    assert status["status"] == "failed"
    assert status["error"] == "No specialized agent for alert type 'DiskFull'"


async def test_alert_types_and_health(service: Service):
    assert (await service.client.get("/alert-types")).json() == [
        "NamespaceTerminating",
        "OtherAlert",
    ]
    health = (await service.client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["database"]["status"] == "up"
    assert health["mcp_servers"]["ops"]["state"] == "up"
    assert "get_namespace" in health["mcp_servers"]["ops"]["tools"]
    assert health["model"]["name"] == "scripted:test"
    assert health["replica"] == {
        "id": socket.gethostname(),  # REPLICA_ID's default
        "leases": True,
        "lease_seconds": 30.0,
        "sessions": 0,
    }
    history = (await service.client.get("/api/v1/history/health")).json()
    assert history["status"] == "ok"


async def test_full_queue_answers_429_with_retry_after(make_settings: Callable[..., Settings]):
    model = ScriptedChatModel(responder=two_iterations, latency=0.5)
    async with serve(make_settings(max_concurrent_alerts=1, max_queued_alerts=1), model) as service:
        await service.submit()
        await service.submit()
        response = await service.client.post("/alerts", json=ALERT)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "5"
        assert "capacity 2" in response.json()["detail"]


async def test_a_key_from_before_a_restart_gets_its_session_even_when_the_queue_is_full(
    make_settings: Callable[..., Settings],
):
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(make_settings(), model) as service:
        first = await service.submit(**{"Idempotency-Key": "am-restart"})
        await service.wait_done(first["alert_id"])
    slow = ScriptedChatModel(responder=two_iterations, latency=0.5)
    async with serve(make_settings(), slow) as service:  # nothing of it in memory now
        again = await service.client.post(
            "/alerts", json=ALERT, headers={"Idempotency-Key": "am-restart"}
        )
        assert again.status_code == 200
        assert again.json()["session_id"] == first["session_id"]
    settings = make_settings(max_concurrent_alerts=1, max_queued_alerts=1)
    async with serve(settings, slow) as service:
        await service.submit()
        await service.submit()
        full = await service.client.post("/alerts", json=ALERT, headers={"Idempotency-Key": "new"})
        assert full.status_code == 429
        retried = await service.client.post(
            "/alerts", json=ALERT, headers={"Idempotency-Key": "am-restart"}
        )
        assert retried.status_code == 200
        assert retried.json()["session_id"] == first["session_id"]
    sessions = (await _list_all(make_settings)).get("total")
    assert sessions == 3  # the first and the two that filled the queue: no other


async def _list_all(make_settings: Callable[..., Settings]) -> dict[str, object]:
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(make_settings(), model) as service:
        return dict((await service.client.get("/api/v1/history/sessions")).json())


async def test_database_down_investigations_still_run(tmp_path):
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    model = ScriptedChatModel(responder=two_iterations)
    async with serve(settings, model) as service:
        health = (await service.client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["database"]["status"] == "down"
        accepted = await service.submit()
        events = await service.events(accepted["alert_id"])
        assert events[-1]["event"] == "session_completed"
        status = await service.wait_done(accepted["alert_id"])
        assert status["status"] == "completed"
        listing = await service.client.get("/api/v1/history/sessions")
        assert listing.status_code == 503


async def test_openapi_documents_every_endpoint(service: Service):
    spec = (await service.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/alerts", "post"),
        ("/processing-status/{alert_id}", "get"),
        ("/alert-types", "get"),
        ("/health", "get"),
        ("/alerts/{alert_id}/events", "get"),
        ("/api/v1/history/sessions", "get"),
        ("/api/v1/history/sessions/{session_id}", "get"),
        ("/api/v1/history/health", "get"),
        ("/api/v1/history/sessions/{session_id}/checkpoints", "get"),
        ("/api/v1/history/sessions/{session_id}/replay", "post"),
    ]:
        operation = paths[path][method]
        ok = next(code for code in operation["responses"] if code.startswith("2"))
        assert operation["responses"][ok]["content"], (path, method)
    assert (await service.client.get("/docs")).status_code == 200
    await asyncio.sleep(0)


async def test_concurrent_retries_with_one_idempotency_key_get_one_session(service: Service):
    responses = await asyncio.gather(
        *(
            service.client.post("/alerts", json=ALERT, headers={"Idempotency-Key": "race-1"})
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["session_id"] for r in responses}) == 1


async def test_finished_sessions_leave_memory_but_stay_readable(
    service: Service, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("server.session_index.FINISHED_IN_MEMORY", 2)
    accepted = []
    for _ in range(4):
        accepted.append(await service.submit())
        await service.wait_done(accepted[-1]["alert_id"])
    investigations = service.app.state.runtime.investigations
    assert len(investigations.sessions) <= 2  # a long-running service stays bounded
    first = (await service.client.get(accepted[0]["status_url"])).json()
    assert first["status"] == "completed" and first["session_id"] == accepted[0]["session_id"]
