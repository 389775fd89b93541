"""`sre-agent serve --workers 2` (WEB_CONCURRENCY=2), proven with real processes
(tests/soak/harness.py) on one SQLite file: both workers take alerts on the one port,
every investigation completes whichever worker runs it, the event stream of a session
read from the other worker is whole and ends with its end, /metrics counts the alerts of
both whichever answers, the alerts of a client that keeps its connection open reach
both workers, the supervisor stays small, a worker killed mid-burst is
replaced and its sessions are resumed by a live worker once their leases run out, and a
stop leaves no session unfinished in the index. A port something listens on already is
refused with a message, not shared."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.chat_completions import FakeChatCompletions
from tests.integration.service_history import (
    index_statuses,
    service_env,
)
from tests.soak.harness import (
    Client,
    Script,
    ServiceProcess,
    alert,
    quiet_disconnects,
    sre_agent_command,
    write_config,
)

pytestmark = pytest.mark.timeout(240)

LEASE = 2.0


async def _replica_of_connection(client: httpx.AsyncClient) -> str:
    """The replica id of the worker that `client`'s (kept-alive) connection reached."""
    response = await client.get("/health")
    response.raise_for_status()
    return str(response.json()["replica"]["id"])


async def _workers_seen(service: ServiceProcess, tries: int = 200) -> set[str]:
    """Replica ids answering /health over `tries` new connections (at most two needed)."""
    seen: set[str] = set()
    for _ in range(tries):
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            seen.add(await _replica_of_connection(client))
        if len(seen) >= 2:
            break
    return seen


async def _client_on_another_worker(service: ServiceProcess, owner: str) -> httpx.AsyncClient:
    """A client whose connection reached a worker other than `owner`."""
    for _ in range(200):
        client = httpx.AsyncClient(
            base_url=service.url,
            timeout=30,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        if await _replica_of_connection(client) != owner:
            return client
        await client.aclose()
    raise AssertionError(f"every connection reached {owner}")


async def _stream(client: httpx.AsyncClient, alert_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"/alerts/{alert_id}/events") as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def _worker_pids(service: ServiceProcess) -> list[int]:
    """The supervisor's running worker processes (not its multiprocessing helpers)."""
    assert service.proc is not None
    children = Path(f"/proc/{service.proc.pid}/task/{service.proc.pid}/children")
    pids = []
    for pid in map(int, children.read_text().split()):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if state != "Z" and b"spawn_main" in command:
            pids.append(pid)
    return pids


@pytest.fixture
def fake():
    with FakeChatCompletions(Script(calls=(2, 1), tool_seconds=0.2), latency=0.2) as server:
        quiet_disconnects(server)
        yield server


@pytest.fixture
def two_workers(fake: FakeChatCompletions, workdir: Path) -> ServiceProcess:
    config = write_config(workdir, call_log=workdir / "mcp-calls.jsonl")
    env = service_env(
        fake,
        workdir,
        config,
        WEB_CONCURRENCY="2",
        MAX_CONCURRENT_ALERTS="3",
        REPLICA_ID="host",
        SESSION_LEASE_SECONDS=str(LEASE),
    )
    return ServiceProcess(workdir, env)


async def test_two_workers_share_the_port_and_the_alerts(two_workers: ServiceProcess) -> None:
    service = two_workers
    await service.start()
    try:
        workers = await _workers_seen(service)
        assert len(workers) == 2, workers
        assert all(w.startswith("host-w") for w in workers)  # each a replica id of its own

        keys = [f"ns-{n}" for n in range(8)]
        accepted = [await Client(service).submit(alert(k), k) for k in keys]
        first = accepted[0]
        owner = await _owner_of(service, first["session_id"])
        client = await _client_on_another_worker(service, owner)
        try:
            streamed = await _stream(client, first["alert_id"])
        finally:
            await client.aclose()
        final = await Client(service).wait_terminal({a["session_id"] for a in accepted}, limit=90)
        scrapes, answered = [], set()
        while len(answered) < 2:  # a scrape from each worker
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                answered.add(await _replica_of_connection(client))
                scrapes.append((await client.get("/metrics")).text)
    finally:
        await service.stop()

    assert [s["status"] for s in final] == ["completed"] * len(keys)
    types = [e["type"] for e in streamed]
    assert types[0] == "session_started" and types[-1] == "session_completed", types
    assert types.count("iteration_started") == 2
    for text in scrapes:  # whichever worker answers speaks for both
        assert 'sre_agent_alerts_received_total{source="api"} 8.0' in text
        assert (
            'sre_agent_sessions_finished_total{agent="kubernetes",status="completed"} 8.0' in text
        )
        assert 'sre_agent_sessions_in_progress{state="running"} 0.0' in text
    assert service.proc is not None and service.proc.returncode == 0  # stopped cleanly
    log = service.log_path().read_text().splitlines()
    lines = [json.loads(line) for line in log if line.startswith("{")]
    named = {line.get("replica") for line in lines if line.get("session_id")}
    assert named == workers  # each worker's lines name it
    statuses = await index_statuses(str(service.env["HISTORY_DATABASE_URL"]))
    assert set(statuses.values()) == {"completed"}


async def test_alerts_over_one_kept_alive_connection_reach_both_workers(
    two_workers: ServiceProcess,
) -> None:
    """The kernel hands a connection, not a request, to a worker: a client that keeps
    one connection open (Alertmanager does) would send every alert to one worker. Each
    alert's answer ends its connection, so the client's next one may reach the other."""
    service = two_workers
    await service.start()
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, timeout=30, limits=one_connection
        ) as client:
            answers = [
                await client.post(
                    "/alerts", json=alert(f"ns-{n}"), headers={"Idempotency-Key": f"k{n}"}
                )
                for n in range(16)
            ]
        owners = [await _owner_of(service, r.json()["session_id"]) for r in answers]
    finally:
        await service.stop()
    assert [r.status_code for r in answers] == [202] * 16
    assert {r.headers.get("connection") for r in answers} == {"close"}
    assert len(set(owners)) == 2, owners  # all 16 on one worker: 1 chance in 32,768


async def test_the_supervisor_holds_none_of_what_the_workers_load(
    two_workers: ServiceProcess,
) -> None:
    """The supervisor checks the configuration and prepares the database in a process of
    its own: it stays far smaller than a worker (before, it held as much as one)."""
    service = two_workers
    await service.start()
    try:
        assert len(await _workers_seen(service)) == 2
        assert service.proc is not None
        supervisor = _resident_bytes(service.proc.pid)
        workers = [_resident_bytes(pid) for pid in _worker_pids(service)]
    finally:
        await service.stop()
    assert len(workers) == 2
    assert all(supervisor < worker / 2 for worker in workers), (supervisor, workers)


def _resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def _owner_of(service: ServiceProcess, session_id: str) -> str:
    from server.store import Store

    store = await Store.open(service.env["HISTORY_DATABASE_URL"])
    try:
        record = await store.get_session(session_id)
    finally:
        await store.close()
    assert record is not None and record.owner
    return str(record.owner)


async def test_a_killed_worker_is_replaced_and_its_sessions_resumed(
    two_workers: ServiceProcess,
) -> None:
    service = two_workers
    await service.start()
    try:
        assert len(await _workers_seen(service)) == 2
        keys = [f"ns-{n}" for n in range(6)]
        ids = {(await Client(service).submit(alert(k), k))["session_id"] for k in keys}
        await asyncio.sleep(0.5)  # under way on both workers
        victim = _worker_pids(service)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = time.monotonic() + 30
        while victim in _worker_pids(service) or len(_worker_pids(service)) < 2:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            await asyncio.sleep(0.1)
        final = await Client(service).wait_terminal(ids, limit=120)
        log = service.log_path().read_text()
    finally:
        await service.stop()

    assert [s["status"] for s in final] == ["completed"] * len(keys)
    assert "resuming session" in log  # the dead worker's, by a live one
    assert time.monotonic() - killed_at > LEASE


def test_workers_refuse_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "HISTORY_"))}
        env["HISTORY_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
        done = subprocess.run(
            [*sre_agent_command(), "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout
    assert "in use" in done.stdout
