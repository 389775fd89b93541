"""GET /metrics: Prometheus text fed by the investigations' events."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import ALERT, Service

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: Service) -> Samples:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def test_metrics_after_a_completed_and_a_failed_investigation(service: Service):
    completed = await service.submit(**{"Idempotency-Key": "metrics-1"})
    again = await service.submit(**{"Idempotency-Key": "metrics-1"})  # deduplicated
    assert again["session_id"] == completed["session_id"]
    failed = await service.submit({**ALERT, "alert_type": "DiskFull"})
    assert (await service.wait_done(completed["alert_id"]))["status"] == "completed"
    assert (await service.wait_done(failed["alert_id"]))["status"] == "failed"
    async with asyncio.timeout(10):  # a worker counts itself idle just after the status
        while True:
            samples = await scrape(service)
            if not value(samples, "sre_agent_sessions_in_progress", state="running"):
                break
            await asyncio.sleep(0.02)

    assert value(samples, "sre_agent_alerts_received_total", source="api") == 3
    assert value(samples, "sre_agent_alerts_received_total", source="replay") == 0
    assert value(samples, "sre_agent_alerts_deduplicated_total", source="api") == 1
    assert value(samples, "sre_agent_alerts_deduplicated_total", source="alertmanager") == 0

    assert series(samples, "sre_agent_sessions_finished_total") == {
        frozenset({("status", "completed"), ("agent", "kubernetes")}): 1,
        frozenset({("status", "failed"), ("agent", "none")}): 1,
    }
    assert value(samples, "sre_agent_sessions_in_progress", state="queued") == 0
    assert value(samples, "sre_agent_queue_depth") == 0
    duration = "sre_agent_investigation_duration_seconds"
    assert value(samples, f"{duration}_count", agent="kubernetes", status="completed") == 1
    assert value(samples, f"{duration}_count", agent="none", status="failed") == 1
    assert value(samples, f"{duration}_sum", agent="kubernetes", status="completed") > 0

    # two iterations of select_tools + partial_analysis, then final_analysis
    llm = "sre_agent_llm_calls_total"
    assert series(samples, llm) == {
        frozenset({("step", "select_tools"), ("model", "scripted:test")}): 2,
        frozenset({("step", "partial_analysis"), ("model", "scripted:test")}): 2,
        frozenset({("step", "final_analysis"), ("model", "scripted:test")}): 1,
    }
    assert len(service.model.requests) == 5
    session = (await service.client.get(completed["session_url"])).json()
    assert session["tokens"] > 0
    assert value(samples, "sre_agent_llm_tokens_total", model="scripted:test") == session["tokens"]
    # get_namespace + list_pods, then slow: all on the ops server
    assert series(samples, "sre_agent_tool_calls_total") == {
        frozenset({("server", "ops"), ("outcome", "ok")}): 3
    }
