"""Client side of the service benchmarks: start `bench.serve` in its own process (so the
measuring client does not share the server's event loop), submit alerts, wait for them,
read the server's memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ROOT, proc_status

_shared: dict[str, Service] = {}


class Service:
    """`async with Service(workdir, latency=0.5, max_concurrent=200) as svc: ...`"""

    def __init__(
        self,
        workdir: Path,
        *,
        db: Path | None = None,
        latency: float = 0.0,
        max_concurrent: int = 10,
        max_queued: int = 100,
        startup_timeout: float = 60.0,
        database_url: str | None = None,
        replica_id: str | None = None,
        workers: int = 1,
    ) -> None:
        """`database_url`: the history there instead of SQLite at `db`; `replica_id`: the
        service's REPLICA_ID (replicas sharing one database need their own); `workers`:
        worker processes (`sre-agent serve --workers`)."""
        self.workdir = workdir
        self.workers = workers
        self.database_url, self.replica_id = database_url, replica_id
        self.db = db or workdir / "data" / "sre-agent.db"
        self.latency = latency
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.client: aiohttp.ClientSession | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Service:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM", "HISTORY_"))
        }
        env["PYTHONPATH"] = str(ROOT)
        log = (self.workdir / "service.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - spawning does not block
            [
                sys.executable,
                "-m",
                "bench.serve",
                "--db",
                str(self.db),
                "--latency",
                str(self.latency),
                "--max-concurrent",
                str(self.max_concurrent),
                "--max-queued",
                str(self.max_queued),
                "--ready-file",
                str(ready),
                *(("--database-url", self.database_url) if self.database_url else ()),
                *(("--replica-id", self.replica_id) if self.replica_id else ()),
                *(("--workers", str(self.workers)) if self.workers > 1 else ()),
            ],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while not (ready.exists() and ready.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench service exited: see {self.workdir / 'service.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError("bench service did not start")
            await asyncio.sleep(0.02)
        self.port = int(ready.read_text())
        # aiohttp, not httpx: on 2 cores the measuring client shares the cores with the
        # service, and httpx spent about 5× the CPU per request (11 ms per burst alert).
        self.client = aiohttp.ClientSession(
            base_url=self.url,
            timeout=aiohttp.ClientTimeout(total=120),
            connector=aiohttp.TCPConnector(limit=400, keepalive_timeout=300),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)

    # --- API ----------------------------------------------------------------------------

    async def submit(self, alert: dict[str, Any]) -> dict[str, Any]:
        """POST the alert (retried once on a dropped connection: the Idempotency-Key makes
        the retry return the same session)."""
        assert self.client is not None
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        try:
            return await self._post_alert(alert, headers)
        except aiohttp.ClientConnectionError:
            return await self._post_alert(alert, headers)

    async def _post_alert(self, alert: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        assert self.client is not None
        async with self.client.post("/alerts", json=alert, headers=headers) as response:
            if response.status not in (200, 202):
                raise RuntimeError(f"POST /alerts: {response.status} {await response.text()}")
            return dict(await response.json())

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON body of GET `path` (raises on an error status)."""
        assert self.client is not None
        async with self.client.get(path, params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def load(self) -> dict[str, int]:
        """The investigations running and queued: as /health reports them (from memory:
        right even when the index lags); with workers, /health speaks for the one worker
        that answers, so as the session index counts them."""
        if self.workers == 1:
            return dict((await self.get("/health"))["queue"])
        counts = (await self.get("/api/v1/history/health"))["sessions"]["by_status"]
        return {"running": counts["processing"], "queued": counts["queued"]}

    async def wait_idle(self, *, interval: float = 0.05, limit: float = 600) -> None:
        """Poll until no investigation runs or waits."""
        deadline = time.monotonic() + limit
        while True:
            load = await self.load()
            if load["running"] == 0 and load["queued"] == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still busy after {limit}s: {load}")
            await asyncio.sleep(interval)

    async def status(self, alert_id: str) -> dict[str, Any]:
        return dict(await self.get(f"/processing-status/{alert_id}"))

    async def settled(self, alert_id: str, *, limit: float = 30.0) -> dict[str, Any]:
        """The alert's processing status once it is final (or after `limit` seconds). A
        worker writes a session's outcome to the index before its own memory shows it, so
        right after the index says nothing runs, the worker that ran a session may still
        answer "processing" for a moment."""
        deadline = time.monotonic() + limit
        while True:
            status = await self.status(alert_id)
            if status["status"] in ("completed", "failed") or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.05)

    async def sessions(self, limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while len(out) < limit:
            body = await self.get("/api/v1/history/sessions", {"page": page, "page_size": 100})
            batch = body["sessions"]
            if not batch:
                break
            out += batch
            page += 1
        return out[:limit]

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU so far of the service's processes (with workers: theirs and
        their supervisor's), all their threads."""
        return sum(_cpu_seconds(pid) for pid in self._processes(fixture=False))

    def children_cpu_seconds(self) -> float:
        """CPU so far of the service's running MCP servers."""
        return sum(_cpu_seconds(pid) for pid in self._processes(fixture=True))

    def worker_pids(self) -> list[int]:
        """The service's processes besides the one started (with workers: the workers, and
        multiprocessing's helper)."""
        return [pid for pid in self._processes(fixture=False) if pid != self.pid]

    def _processes(self, *, fixture: bool) -> list[int]:
        """The running processes of the service's tree that are (or are not) its fixture
        MCP servers."""
        found, tree = [], [self.pid]
        while tree:
            pid = tree.pop()
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if (b"mcp_server" in command) == fixture:
                    found.append(pid)
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        tree += [int(c) for c in (task / "children").read_text().split()]
        return found

    async def run_burst(self, alerts: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
        """Submit `alerts` at once and wait until none runs or waits; (wall seconds,
        final processing statuses). Raises if any session did not complete."""
        start = time.perf_counter()
        accepted = await asyncio.gather(*(self.submit(a) for a in alerts))
        await self.wait_idle()
        wall = time.perf_counter() - start
        statuses = await asyncio.gather(*(self.settled(a["alert_id"]) for a in accepted))
        bad = [s for s in statuses if s["status"] != "completed"]
        if bad:
            raise RuntimeError(f"{len(bad)} bench sessions did not complete: {bad[0]}")
        return wall, list(statuses)

    def log_lines(self, needle: str) -> int:
        """How many lines of the service's log contain `needle`."""
        path = self.workdir / "service.log"
        if not path.exists():
            return 0
        return sum(needle in line for line in path.read_text(errors="replace").splitlines())


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # it ended meanwhile
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Borrowed:
    """A shared service as an async context manager that does not stop it on exit."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __aenter__(self) -> Service:
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        return None


async def service_for(
    smoke: bool, workdir: Path, *, latency: float, max_concurrent: int, max_queued: int = 100
) -> Service | _Borrowed:
    """Full runs: a fresh service per benchmark. Smoke runs: one service shared by all the
    service benchmarks (start-up dominates their time), stopped by `close_shared()`."""
    if not smoke:
        return Service(
            workdir, latency=latency, max_concurrent=max_concurrent, max_queued=max_queued
        )
    return _Borrowed(await _smoke_service())


_starting: asyncio.Task[Service] | None = None


async def _start_smoke_service() -> Service:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bench-smoke-service-"))
    service = Service(folder, latency=0.05, max_concurrent=10, max_queued=100)
    await service.__aenter__()
    return service


async def _smoke_service() -> Service:
    global _starting
    if "smoke" not in _shared:
        if _starting is None:
            _starting = asyncio.create_task(_start_smoke_service())
        task, _starting = _starting, None
        _shared["smoke"] = await task
    return _shared["smoke"]


def prefetch_smoke() -> None:
    """Start the shared smoke service in the background (it overlaps other benchmarks)."""
    global _starting
    if _starting is None and "smoke" not in _shared:
        _starting = asyncio.create_task(_start_smoke_service())


async def close_shared() -> None:
    import shutil

    global _starting
    if _starting is not None:
        _shared["smoke"] = await _starting
        _starting = None
    while _shared:
        _, service = _shared.popitem()
        await service.__aexit__(None, None, None)
        shutil.rmtree(service.workdir, ignore_errors=True)
