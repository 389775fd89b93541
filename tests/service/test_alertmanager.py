"""POST /alerts/alertmanager with real Alertmanager (version 4) webhook payloads: one
investigation per firing alert, re-notifications deduplicated by fingerprint (also across
a restart), resolved alerts recorded, back-pressure and validation."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest

from graph.registry import AgentRegistry
from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from server.alertmanager import fingerprint
from server.store import Store
from tests.conftest import ops_app_config
from tests.service.conftest import Service, serve, two_iterations

WEBHOOK = "/alerts/alertmanager"
HISTORY = "/api/v1/history/sessions"
ALERTNAME = "KubePodCrashLooping"
GROUP_KEY = '{}/{severity="critical"}:{alertname="KubePodCrashLooping", namespace="billing"}'
STARTS = "2025-06-02T08:14:27.512Z"


def _pod_alert(pod: str, fp: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": ALERTNAME,
            "cluster": "prod-eu-1",
            "container": "api",
            "job": "kube-state-metrics",
            "namespace": "billing",
            "pod": pod,
            "prometheus": "monitoring/k8s",
            "severity": "critical",
        },
        "annotations": {
            "description": f"Pod billing/{pod} (api) is in waiting state (reason: "
            '"CrashLoopBackOff").',
            "runbook_url": "http://127.0.0.1:9/runbooks/kubernetes/kubepodcrashlooping.md",
            "summary": "Pod is crash looping.",
        },
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=max_over_time%28"
        "kube_pod_container_status_waiting_reason%7Breason%3D%22CrashLoopBackOff%22%7D"
        "%5B5m%5D%29+%3E%3D+1&g0.tab=1",
        "fingerprint": fp,
    }


# A grouped notification, as Alertmanager sends it: two pods of one deployment crash.
NOTIFICATION: dict[str, Any] = {
    "receiver": "sre-agent",
    "status": "firing",
    "alerts": [
        _pod_alert("api-7d9c6b5f4-x2k8p", "5f1c2a9e7b3d4c10"),
        _pod_alert("api-7d9c6b5f4-qw4zt", "a03be81f26c94d77"),
    ],
    "groupLabels": {"alertname": ALERTNAME, "namespace": "billing"},
    "commonLabels": {
        "alertname": ALERTNAME,
        "cluster": "prod-eu-1",
        "container": "api",
        "job": "kube-state-metrics",
        "namespace": "billing",
        "prometheus": "monitoring/k8s",
        "severity": "critical",
    },
    "commonAnnotations": {
        "runbook_url": "http://127.0.0.1:9/runbooks/kubernetes/kubepodcrashlooping.md",
        "summary": "Pod is crash looping.",
    },
    "externalURL": "http://alertmanager-main-0:9093",
    "version": "4",
    "groupKey": GROUP_KEY,
    "truncatedAlerts": 0,
}
FINGERPRINTS = [a["fingerprint"] for a in NOTIFICATION["alerts"]]
CALLS_PER_INVESTIGATION = 5  # two_iterations: select, partial, select, partial, final


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    body = copy.deepcopy(NOTIFICATION)
    if alerts:
        body["alerts"] = list(alerts)
    body["status"] = status
    return body


def resolved(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", "2025-06-02T09:01:57.301Z"
    return body


def registry() -> AgentRegistry:
    """The kubernetes agent also handles KubePodCrashLooping."""
    return AgentRegistry(ops_app_config(alert_types=["NamespaceTerminating", ALERTNAME]))


async def post(service: Service, body: dict[str, Any], expect: int = 202) -> dict[str, Any]:
    response = await service.client.post(WEBHOOK, json=body)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def sessions(service: Service) -> list[dict[str, Any]]:
    response = await service.client.get(HISTORY, params={"page_size": 100})
    assert response.status_code == 200, response.text
    listing: list[dict[str, Any]] = response.json()["sessions"]
    return listing


def actions(body: dict[str, Any]) -> list[str]:
    return [a["action"] for a in body["alerts"]]


async def test_grouped_notification_then_repeats_are_deduplicated(
    make_settings: Callable[..., Settings], database_url: str
):
    settings = make_settings()
    model = ScriptedChatModel(responder=two_iterations, latency=0.05)
    async with serve(settings, model, registry()) as service:
        # both members of an Alertmanager HA pair deliver the notification at once
        one, other = await asyncio.gather(post(service, NOTIFICATION), post(service, NOTIFICATION))
        for a, b in zip(one["alerts"], other["alerts"], strict=True):
            assert {a["action"], b["action"]} == {"investigating", "deduplicated"}
            assert a["session_id"] == b["session_id"]
        assert one["investigating"] + other["investigating"] == 2
        first = {
            **one,
            "alerts": [
                a if a["action"] == "investigating" else b
                for a, b in zip(one["alerts"], other["alerts"], strict=True)
            ],
        }
        assert one["receiver"] == "sre-agent" and one["group_key"] == GROUP_KEY
        assert [a["fingerprint"] for a in first["alerts"]] == FINGERPRINTS
        assert {a["alertname"] for a in first["alerts"]} == {ALERTNAME}
        session_ids = [a["session_id"] for a in first["alerts"]]
        assert len(set(session_ids)) == 2
        for alert in first["alerts"]:
            assert alert["events_url"].endswith(f"/alerts/{alert['alert_id']}/events")
            assert alert["session_url"].endswith(f"{HISTORY}/{alert['session_id']}")

        # repeat_interval (or a group change) re-sends the group while both still run
        again = await post(service, NOTIFICATION)
        assert actions(again) == ["deduplicated", "deduplicated"]
        assert [a["session_id"] for a in again["alerts"]] == session_ids
        assert {a["session_status"] for a in again["alerts"]} <= {"queued", "processing"}
        assert again["alerts"][0]["reason"].startswith(f"session {session_ids[0]} is ")

        for alert in first["alerts"]:
            assert (await service.wait_done(alert["alert_id"]))["status"] == "completed"
        assert len(model.requests) == 2 * CALLS_PER_INVESTIGATION  # no third investigation

        # the mapping: fields from labels and annotations, everything else kept
        detail = (await service.client.get(first["alerts"][0]["session_url"])).json()
        data = detail["alert_data"]
        assert data["alert_type"] == ALERTNAME and detail["agent_type"] == "kubernetes"
        assert (data["namespace"], data["pod"]) == ("billing", "api-7d9c6b5f4-x2k8p")
        assert (data["cluster"], data["severity"]) == ("prod-eu-1", "critical")
        assert data["runbook"] == NOTIFICATION["alerts"][0]["annotations"]["runbook_url"]
        assert data["message"].startswith("Pod is crash looping.\nPod billing/api-7d9c6b5f4")
        assert data["labels"] == NOTIFICATION["alerts"][0]["labels"]
        assert data["annotations"] == NOTIFICATION["alerts"][0]["annotations"]
        assert data["fingerprint"] == FINGERPRINTS[0]
        assert data["generatorURL"] == NOTIFICATION["alerts"][0]["generatorURL"]
        assert data["startsAt"].startswith("2025-06-02T08:14:27.512")
        assert data["timestamp"].startswith("2025-06-02T08:14:27.512")

        # finished, but within ALERTMANAGER_DEDUP_WINDOW: still covered
        later = await post(service, NOTIFICATION)
        assert actions(later) == ["deduplicated", "deduplicated"]
        assert {a["session_status"] for a in later["alerts"]} == {"completed"}
        assert "completed less than 3600s ago" in later["alerts"][0]["reason"]
        assert len(model.requests) == 2 * CALLS_PER_INVESTIGATION
        listed = await sessions(service)
        assert sorted(s["session_id"] for s in listed) == sorted(session_ids)

        # the group resolves: recorded, nothing investigated
        done = await post(service, resolved(NOTIFICATION))
        assert actions(done) == ["resolved", "resolved"] and done["resolved"] == 2
        assert [a["session_id"] for a in done["alerts"]] == session_ids
        assert len(model.requests) == 2 * CALLS_PER_INVESTIGATION
        assert len(await sessions(service)) == 2

    store = Store(database_url)
    try:
        record = await store.get_session(session_ids[0])
        assert record is not None and record.fingerprint == FINGERPRINTS[0]
        assert record.session_metadata["alert_resolved_at"].startswith("2025-06-02T09:01:57")
    finally:
        await store.close()

    # deduplication survives a restart: the fingerprint is in the session index
    fresh = ScriptedChatModel(responder=two_iterations)
    async with serve(settings, fresh, registry()) as service:
        repeat = await post(service, NOTIFICATION)
        assert actions(repeat) == ["deduplicated", "deduplicated"]
        assert [a["session_id"] for a in repeat["alerts"]] == session_ids
        assert fresh.requests == [] and len(await sessions(service)) == 2


async def test_zero_window_investigates_again_after_completion(
    make_settings: Callable[..., Settings],
):
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    settings = make_settings(alertmanager_dedup_window=0)
    one = notification(NOTIFICATION["alerts"][0])
    async with serve(settings, model, registry()) as service:
        first = (await post(service, one))["alerts"][0]
        running = (await post(service, one))["alerts"][0]
        assert running["action"] == "deduplicated"  # a running session always covers it
        assert running["session_id"] == first["session_id"]
        await service.wait_done(first["alert_id"])

        second = (await post(service, one))["alerts"][0]
        assert second["action"] == "investigating"
        assert second["session_id"] != first["session_id"]
        assert (await service.wait_done(second["alert_id"]))["status"] == "completed"
        assert len(model.requests) == 2 * CALLS_PER_INVESTIGATION
        listed = await sessions(service)
        assert {s["session_id"] for s in listed} == {first["session_id"], second["session_id"]}


async def _invalid_payloads_are_422_naming_the_field(service: Service) -> None:
    cases = [
        ({"alerts": []}, "body.status: Field required"),
        ({"status": "firing"}, "body.alerts: Field required"),
        (
            notification({"status": "firing", "labels": {"pod": "x"}}),
            "body.alerts.0.labels.alertname",
        ),
        (notification({**_pod_alert("p", "f"), "status": "pending"}), "body.alerts.0.status"),
        (notification({**_pod_alert("p", "f"), "startsAt": "yesterday"}), "body.alerts.0.startsAt"),
    ]
    bad_label = _pod_alert("p", "f")
    bad_label["labels"]["replicas"] = 3
    cases.append((notification(bad_label), "body.alerts.0.labels.replicas"))
    for payload, field in cases:
        response = await service.client.post(WEBHOOK, json=payload)
        assert response.status_code == 422, payload
        assert field in response.json()["message"], response.json()


async def test_unknown_alertname_resolved_only_odd_and_invalid_alerts(
    service: Service, monkeypatch: pytest.MonkeyPatch
):
    await _invalid_payloads_are_422_naming_the_field(service)
    assert len(await sessions(service)) == 0

    disk = _pod_alert("node-exporter-4k2lx", "0c6a1d2f9e8b7a65")
    disk["labels"]["alertname"] = "NodeFilesystemAlmostOutOfSpace"
    no_fingerprint = copy.deepcopy(disk)
    del no_fingerprint["fingerprint"], no_fingerprint["annotations"]
    no_fingerprint["labels"]["alertname"] = "NodeDiskIOSaturation"
    too_long = _pod_alert("api-1", "ffff000011112222")
    too_long["labels"]["alertname"] = "X" * 300
    never_seen = resolved(notification(_pod_alert("gone-1", "1234567890abcdef")))["alerts"][0]

    body = await post(service, notification(disk, no_fingerprint, too_long, never_seen, disk))
    assert actions(body) == [
        "investigating",
        "investigating",
        "rejected",
        "resolved",
        "deduplicated",
    ]
    assert (body["investigating"], body["rejected"], body["resolved"]) == (2, 1, 1)
    assert body["alerts"][4]["session_id"] == body["alerts"][0]["session_id"]

    failed = await service.wait_done(body["alerts"][0]["alert_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == "No specialized agent for alert type 'NodeFilesystemAlmostOutOfSpace'"
    events = await service.events(body["alerts"][0]["alert_id"])
    assert events[-1]["event"] == "session_failed"

    # without a fingerprint: Alertmanager's own, computed from the labels
    derived = body["alerts"][1]
    assert derived["fingerprint"] == fingerprint(no_fingerprint["labels"])
    detail = (await service.client.get(derived["session_url"])).json()
    assert detail["alert_data"]["message"].startswith("NodeDiskIOSaturation is firing (")
    assert "pod=node-exporter-4k2lx" in detail["alert_data"]["message"]

    assert "alert_type" in body["alerts"][2]["reason"]
    assert body["alerts"][2]["session_id"] is None
    assert body["alerts"][3]["session_id"] is None  # nothing to mark
    assert service.model.requests == []  # none of them reached the model
    await service.wait_done(derived["alert_id"])
    assert len(await sessions(service)) == 2

    monkeypatch.setattr("server.alertmanager.MAX_ALERTS_PER_NOTIFICATION", 1)
    capped = await post(service, notification(never_seen, disk))
    assert actions(capped) == ["resolved", "rejected"]
    assert "more than 1 alerts in one notification" in capped["alerts"][1]["reason"]

    operation = (await service.client.get("/openapi.json")).json()["paths"][WEBHOOK]["post"]
    assert operation["responses"]["202"]["content"] and "429" in operation["responses"]


async def test_full_queue_refuses_the_batch_with_429(make_settings: Callable[..., Settings]):
    model = ScriptedChatModel(responder=two_iterations, latency=0.3)
    settings = make_settings(max_concurrent_alerts=1, max_queued_alerts=1)
    pods = [_pod_alert(f"api-{n}", f"{n:016x}") for n in range(1, 5)]
    async with serve(settings, model, registry()) as service:
        partly = await post(service, notification(*pods[:3]))  # capacity 2: one is refused
        assert actions(partly) == ["investigating", "investigating", "rejected"]
        assert partly["alerts"][2]["reason"].startswith("queue full: ")

        response = await service.client.post(WEBHOOK, json=notification(pods[3]))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "5"
        assert "capacity 2" in response.json()["detail"]
        assert actions(response.json()) == ["rejected"]

        # deduplicated alerts are taken on: the rest is reported, not retried as a whole
        mixed = await post(service, notification(pods[0], pods[3]))
        assert actions(mixed) == ["deduplicated", "rejected"]
        assert len(await sessions(service)) == 2


async def test_database_down_deduplicates_in_memory():
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    one = notification(NOTIFICATION["alerts"][0])
    async with serve(settings, model, registry()) as service:
        first = (await post(service, one))["alerts"][0]
        assert first["action"] == "investigating"
        assert (await service.wait_done(first["alert_id"]))["status"] == "completed"
        repeat = (await post(service, one))["alerts"][0]
        assert repeat["action"] == "deduplicated"
        assert repeat["session_id"] == first["session_id"]
        assert len(model.requests) == CALLS_PER_INVESTIGATION
