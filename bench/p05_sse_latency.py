"""P5: Server-Sent Events delivery latency with many subscribers of one investigation.

The service runs in its own process; the subscribers are raw asyncio HTTP/1.1 clients in
this process (chunked decoding only, no SSE library: little client-side delay). Latency
of an event = when a subscriber read it (wall clock) − the event's own `ts` (stamped by
the node that emitted it, same machine clock). Only events emitted after every
subscriber was connected count (earlier ones are a replay of the backlog, not delivery).
Several investigations (8 iterations, model 0.1 s, 2 tools of 0.05 s) run one after the
other; percentiles over all (event, subscriber) pairs. Then the same on a service of 2
worker processes (`sre-agent serve --workers 2`): the subscribers' connections are spread
over both, so about half of them read from the worker that does not run the session,
which follows the session's events as they are stored (server/store/notices.py)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import Plan, Result, bench_alert, percentile
from bench.service import Service, service_for

ID = "P5"
TITLE = "SSE delivery latency, N concurrent subscribers"
TARGET = "p99 ≤ 50 ms (N = 100)"


class Subscriber:
    def __init__(self, port: int, alert_id: str) -> None:
        self.port, self.alert_id = port, alert_id
        self.connected_at = 0.0
        self.samples: list[tuple[float, float]] = []  # (emitted, received) epoch seconds
        self.done = False

    async def run(self, connected: asyncio.Event | None = None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(
                f"GET /alerts/{self.alert_id}/events HTTP/1.1\r\nHost: bench\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"SSE subscribe failed: {head[:200]!r}")
            chunked = b"chunked" in head.lower()
            self.connected_at = time.time()
            buffer = b""
            while True:
                if chunked:
                    size = int((await reader.readline()).strip() or b"0", 16)
                    if size == 0:
                        return
                    data = (await reader.readexactly(size + 2))[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        return
                received = time.time()
                buffer += data.replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"data:"):
                            event = json.loads(line[5:])
                            emitted = datetime.fromisoformat(event["ts"]).timestamp()
                            self.samples.append((emitted, received))
                            if event["type"] in ("session_completed", "session_failed"):
                                self.done = True
                                return
        finally:
            writer.close()


async def one_investigation(service: Service, plan: Plan, subscribers: int) -> list[float]:
    accepted = await service.submit(bench_alert(plan))
    subs = [Subscriber(service.port, accepted["alert_id"]) for _ in range(subscribers)]
    await asyncio.gather(*(s.run() for s in subs))
    if not all(s.done for s in subs):
        raise RuntimeError("a subscriber's stream ended before the terminal event")
    ready = max(s.connected_at for s in subs)
    return [
        (received - emitted) * 1000
        for s in subs
        for emitted, received in s.samples
        if emitted > ready
    ]


async def run(smoke: bool) -> Result:
    subscribers = 10 if smoke else 100
    rounds = 1 if smoke else 4
    plan = Plan(iterations=3 if smoke else 8, tools=2, latency=0.05, sizes=(2000, 4000))
    latencies: list[float] = []
    on_workers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-p5-") as tmp:
        async with await service_for(smoke, Path(tmp), latency=0.1, max_concurrent=4) as service:
            await one_investigation(service, Plan(iterations=1), 2)  # warm-up
            for _ in range(rounds):
                latencies += await one_investigation(service, plan, subscribers)
        if not smoke:
            workdir = Path(tmp) / "workers"
            async with Service(workdir, latency=0.1, max_concurrent=4, workers=2) as service:
                await one_investigation(service, Plan(iterations=1), 2)
                for _ in range(rounds):
                    on_workers += await one_investigation(service, plan, subscribers)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    workers = (
        {
            "p50_ms": round(percentile(on_workers, 50), 3),
            "p90_ms": round(percentile(on_workers, 90), 3),
            "p99_ms": round(percentile(on_workers, 99), 3),
            "max_ms": round(max(on_workers), 3),
            "deliveries": len(on_workers),
        }
        if on_workers
        else None
    )
    return Result(
        id=ID,
        title=TITLE.replace("N ", f"{subscribers} "),
        value=round(p99, 2),
        unit="ms p99",
        target=TARGET,
        passed=p99 <= 50 if not smoke else None,
        summary=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms over "
        f"{len(latencies):,} deliveries to {subscribers} subscribers"
        + (
            f"; with 2 worker processes (subscribers on both): p50 {workers['p50_ms']:.1f} ms, "
            f"p99 {workers['p99_ms']:.1f} ms, max {workers['max_ms']:.1f} ms"
            if workers
            else ""
        ),
        details={
            "subscribers": subscribers,
            "investigations": rounds,
            "deliveries": len(latencies),
            "p50_ms": round(p50, 3),
            "p90_ms": round(percentile(latencies, 90), 3),
            "p99_ms": round(p99, 3),
            "max_ms": round(max(latencies), 3),
            "two_workers": workers,
        },
    )
