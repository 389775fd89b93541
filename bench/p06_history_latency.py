"""P6: history reads at scale, over HTTP against the service in its own process.

The session index gets N finished sessions (bulk-inserted rows shaped like real ones:
alert, result, Markdown report; started over the last 80 days; 6 alert types, 90 %
completed), then the service runs one real 20-iteration investigation (fixture MCP server,
2 tools of 4 kB / 20 kB per iteration). Latency is client-side per request, sequential,
after a warm-up. The list figure is the worst p95 over: the default page, status filter,
alert-type filter, a 7-day date range, page 50."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Plan, Result, bench_alert, percentile
from bench.service import service_for

ID = "P6"
TITLE = "history: list at N sessions; timeline of a 20-iteration session"
TARGET = "p95 ≤ 50 ms (list, N = 100,000) / ≤ 100 ms (timeline)"

ALERT_TYPES = [
    "NamespaceTerminating",
    "PodCrashLooping",
    "PodPending",
    "NodeNotReady",
    "DiskPressure",
    "HighLatency",
]


def _row(rng: random.Random, now: datetime) -> dict[str, Any]:
    alert_type = rng.choice(ALERT_TYPES)
    started = now - timedelta(seconds=rng.uniform(3600, 80 * 86400))
    completed = rng.random() < 0.9
    ended = started + timedelta(seconds=rng.uniform(20, 600))
    alert = {
        "alert_type": alert_type,
        "severity": rng.choice(["warning", "critical"]),
        "environment": "production",
        "cluster": "https://api.prod.example.com",
        "namespace": f"team-{rng.randrange(200)}",
        "pod": None,
        "message": f"{alert_type} firing for 30 minutes on team-{rng.randrange(200)}",
        "runbook": "https://github.com/acme/runbooks/blob/main/runbook.md",
        "context": None,
        "timestamp": started.isoformat(),
    }
    result = {
        "summary": "The controller that removes the finalizer is scaled to zero. " * 2,
        "root_cause": "Deployment billing-system/invoice-controller has 0 replicas. " * 2,
        "evidence": [{"finding": f"finding {i}", "tool_call": f"T1.{i}"} for i in range(4)],
        "remediation": ["Scale the controller back up.", "Confirm the namespace is gone."],
        "confidence": "high",
        "stop_reason": "model_concluded",
        "iterations": 2,
    }
    return {
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "alert_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "alert_type": alert_type,
        "agent_type": "kubernetes",
        "status": "completed" if completed else "failed",
        "progress": 100 if completed else 40,
        "current_step": "completed" if completed else "failed",
        "assigned_mcp_servers": ["kubernetes-server"],
        "alert_data": alert,
        "result": result if completed else None,
        "result_markdown": f"## Summary\n{result['summary']}\n" * 4 if completed else None,
        "error_message": None if completed else "model timed out after 3 retries",
        "model": "openai:gpt-4.1",
        "iterations": rng.randrange(1, 8),
        "tokens": rng.randrange(5000, 80000),
        "started_at": started,
        "updated_at": ended,
        "completed_at": ended,
        "session_metadata": {},
    }


async def populate(db: Path, count: int) -> float:
    """Bulk-insert `count` finished sessions into the index; returns seconds taken."""
    from sqlalchemy import insert

    from server.store import Store
    from server.store.models import SESSIONS

    start = time.perf_counter()
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    rng = random.Random(6)
    now = datetime.now(UTC)
    try:
        done = 0
        while done < count:
            rows = [_row(rng, now) for _ in range(min(5000, count - done))]
            async with store.engine.begin() as conn:
                await conn.execute(insert(SESSIONS), rows)
            done += len(rows)
    finally:
        await store.close()
    return time.perf_counter() - start


async def timed_get(service: Any, path: str, params: dict[str, Any] | None = None) -> float:
    """Milliseconds to GET `path` and read its JSON body."""
    start = time.perf_counter()
    await service.get(path, params)
    return (time.perf_counter() - start) * 1000


async def p95_of(service: Any, path: str, params: dict[str, Any] | None, n: int) -> float:
    await timed_get(service, path, params)  # warm-up
    return percentile([await timed_get(service, path, params) for _ in range(n)], 95)


async def run(smoke: bool) -> Result:
    count = 2_000 if smoke else 100_000
    iterations = 3 if smoke else 20
    requests = 5 if smoke else 60
    with tempfile.TemporaryDirectory(prefix="bench-p6-") as tmp:
        async with await service_for(smoke, Path(tmp), latency=0.0, max_concurrent=4) as service:
            populate_s = await populate(service.db, count)
            plan = Plan(iterations=iterations, tools=2, latency=0.0, sizes=(4000, 20000))
            _, statuses = await service.run_burst([bench_alert(plan)])
            session_id = statuses[0]["session_id"]
            week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
            variants: dict[str, dict[str, Any]] = {
                "default": {},
                "status=failed": {"status": "failed"},
                "alert_type": {"alert_type": "PodPending"},
                "last 7 days": {"start_date": week_ago},
                "page 50": {"page": 50},
            }
            lists = {
                name: await p95_of(service, "/api/v1/history/sessions", params, requests)
                for name, params in variants.items()
            }
            detail = f"/api/v1/history/sessions/{session_id}"
            timeline = await p95_of(service, detail, None, requests)
            body = await service.get(detail)
            entries = len(body["timeline"])
            total = (await service.get("/api/v1/history/sessions"))["total"]
            await asyncio.sleep(0)
    worst_name = max(lists, key=lambda k: lists[k])
    worst = lists[worst_name]
    passed = worst <= 50 and timeline <= 100
    return Result(
        id=ID,
        title=TITLE.replace("N ", f"{count:,} "),
        value=round(worst, 2),
        unit="ms p95 (list)",
        target=TARGET,
        passed=passed if not smoke else None,
        summary=f"list p95 {worst:.1f} ms (worst: {worst_name}; default {lists['default']:.1f} "
        f"ms) at {total:,} sessions; timeline p95 {timeline:.1f} ms "
        f"({iterations} iterations, {entries} entries)",
        details={
            "sessions": total,
            "list_p95_ms": {k: round(v, 2) for k, v in lists.items()},
            "timeline_p95_ms": round(timeline, 2),
            "timeline_entries": entries,
            "timeline_iterations": iterations,
            "requests_per_figure": requests,
            "populate_s": round(populate_s, 1),
        },
    )
