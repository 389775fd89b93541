"""Crash recovery, proven on a real `sre-agent serve` process (tests/soak/harness.py):

- model calls retry rate limits and 5xx answers (honouring Retry-After), then fail the
  session with the provider's own message, in bounded time;
- a SIGKILL of the service (and its MCP servers) in the middle of investigations: after a
  restart every interrupted session resumes from its last checkpoint and completes, no
  session stays queued or processing, and no tool call whose result had reached a
  checkpoint runs again. Calls in flight at the kill run again (at-least-once for the
  interrupted node): they had no checkpointed result.

The model is the fake OpenAI-compatible server (LLM_MODEL=openai:fake, LLM_BASE_URL); the
MCP server is tests/servers/flaky_server.py, which logs every call it executes with the
alert's key, iteration and call number."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from langgraph.types import RetryPolicy

from graph.retry import model_retry_policy, retry_after
from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from tests.fakes.chat_completions import FakeChatCompletions
from tests.integration.service_history import (
    announced_iterations,
    checkpointed_sessions,
    database_url,
    index_statuses,
    service_env,
)
from tests.service.conftest import serve, two_iterations
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

ALERTS = 8
CONCURRENT = 4


# --- model retries --------------------------------------------------------------------------


def provider_error(status: int, **headers: str) -> openai.APIStatusError:
    """The error the OpenAI client raises for an HTTP `status` answer with `headers`."""
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = SimpleNamespace(status_code=status, headers=httpx.Headers(headers), request=request)
    kinds: dict[int, type[openai.APIStatusError]] = {
        429: openai.RateLimitError,
        400: openai.BadRequestError,
    }
    kind = kinds.get(status, openai.InternalServerError)
    return kind("injected", response=response, body=None)  # type: ignore[arg-type]


def first_matching(exc: Exception) -> RetryPolicy | None:
    """The node retry policy LangGraph applies to `exc` (the first whose retry_on matches)."""
    return next((p for p in model_retry_policy() if p.retry_on(exc)), None)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("headers", "asked"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "45"}, 45.0),
    ],
)
def test_node_retry_waits_at_least_retry_after(headers, asked):
    exc = provider_error(429, **headers)
    assert retry_after(exc) == asked
    policy = first_matching(exc)
    assert policy is not None and policy.backoff_factor == 1.0
    assert asked <= policy.initial_interval <= max(2 * asked, 0.5)


def test_node_retry_reads_an_http_date():
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    exc = provider_error(503, **{"retry-after": when})
    assert 15 < (retry_after(exc) or 0) <= 20
    policy = first_matching(exc)
    assert policy is not None and policy.initial_interval >= retry_after(exc)  # type: ignore[operator]


def test_node_retry_without_retry_after_backs_off_exponentially():
    for exc in (provider_error(500), provider_error(429, **{"retry-after": "600"})):
        policy = first_matching(exc)
        assert policy is not None
        assert (policy.initial_interval, policy.backoff_factor, policy.jitter) == (1.0, 2.0, True)
    assert first_matching(provider_error(400, **{"retry-after": "1"})) is None


@pytest.fixture
def fake() -> Iterator[FakeChatCompletions]:
    with FakeChatCompletions(Script(calls=(1,), tool_seconds=0)) as server:
        quiet_disconnects(server)
        yield server


async def run_one(fake: FakeChatCompletions, workdir: Path, limit: float) -> dict[str, Any]:
    config = write_config(workdir, call_log=workdir / "calls.jsonl")
    service = ServiceProcess(workdir, service_env(fake, workdir, config))
    try:
        await service.start()
        client = Client(service)
        session = (await client.submit(alert("ns-retry"), "retry"))["session_id"]
        started = time.monotonic()
        (result,) = await client.wait_terminal({session}, limit=limit, interval=0.05)
        result["seconds"] = time.monotonic() - started
        return result
    finally:
        await service.stop()


async def test_rate_limits_are_retried_after_retry_after(fake, workdir):
    fake.fail(429, times=2, retry_after=1.5, message="rate limited: slow down (injected)")
    result = await run_one(fake, workdir, limit=60)

    assert result["status"] == "completed", result["error_message"]
    requests = fake.requests
    assert [r.status for r in requests][:3] == [429, 429, 200]
    gaps = [b.time - a.time for a, b in itertools.pairwise(requests[:3])]
    # Without Retry-After the client would wait ~0.4-0.5 s before its first retry.
    assert all(gap >= 1.5 for gap in gaps), gaps
    assert all(gap < 5 for gap in gaps), gaps


async def test_persistent_5xx_fails_the_session_with_the_provider_message(fake, workdir):
    fake.fail(500, message="upstream model overloaded (request req-42)")
    result = await run_one(fake, workdir, limit=60)

    assert result["status"] == "failed"
    assert "upstream model overloaded (request req-42)" in result["error_message"]
    assert "500" in result["error_message"]
    # LLM_MAX_RETRIES=1: two requests per attempt, three attempts of the node (graph/retry.py)
    assert [r.status for r in fake.requests] == [500] * 6
    assert result["seconds"] < 30


# --- SIGKILL in the middle of investigations ------------------------------------------------


async def test_sigkill_mid_investigation_resumes_every_session_without_repeating_calls(
    workdir, history_url
):
    call_log = workdir / "mcp-calls.jsonl"
    config = write_config(workdir, call_log=call_log)
    url = history_url
    keys = [f"ns-{n}" for n in range(ALERTS)]
    with FakeChatCompletions(Script(calls=(2, 1), tool_seconds=0.3), latency=0.25) as fake:
        quiet_disconnects(fake)
        env = service_env(
            fake,
            workdir,
            config,
            MAX_CONCURRENT_ALERTS=str(CONCURRENT),
            HISTORY_DATABASE_URL=url,
        )
        service = ServiceProcess(workdir, env)
        try:
            await service.start()
            client = Client(service)
            sessions = {key: (await client.submit(alert(key), key))["session_id"] for key in keys}
            ids = list(sessions.values())

            # Kill once a few sessions have tool results in a checkpoint, mid-flight.
            deadline = time.monotonic() + 30
            while await checkpointed_sessions(service, ids) < 2:
                assert time.monotonic() < deadline, "no tool results were checkpointed in 30 s"
                await asyncio.sleep(0.05)
            await service.kill()

            at_kill = read_call_log(call_log)
            finished = await checkpointed_calls(url)
            statuses = await index_statuses(url)
            interrupted = [sid for sid in ids if statuses[sid] in ("queued", "processing")]
            assert [sid for sid in ids if statuses[sid] == "processing"], statuses
            assert sum(bool(calls) for calls in finished.values()) >= 2

            await service.start()
            final = await client.wait_terminal(set(ids), limit=90)
            load = await client.load()
            counts = await client.counts()
        finally:
            await service.stop()

    assert [s["status"] for s in final] == ["completed"] * ALERTS, [
        s["error_message"] for s in final
    ]
    assert load["running"] == load["queued"] == 0
    assert counts["queued"] == counts["processing"] == 0

    resumed = service.log_path(2).read_text()
    for sid in interrupted:
        assert f"resuming session {sid} (" in resumed
        if finished.get(sid):
            assert f"resuming session {sid} (from its last checkpoint)" in resumed

    # Each iteration was announced once, also when the run resumed inside it.
    assert set(map(tuple, (await announced_iterations(url, ids)).values())) == {(1, 2)}

    # Every session ran its three calls; each is in the history exactly once.
    after = await checkpointed_calls(url)
    for key, sid in sessions.items():
        assert sorted(after[sid]) == [(key, 1, 1), (key, 1, 2), (key, 2, 1)]

    runs_at_kill, runs = executions(at_kill), executions(read_call_log(call_log))
    finished_calls = {call for calls in finished.values() for call in calls}
    assert finished_calls
    for call in finished_calls:  # checkpointed: ran once, before the kill, never again
        assert runs_at_kill[call] == runs[call] == 1, call
    in_flight = set(runs_at_kill) - finished_calls
    for call in in_flight:  # started, result not checkpointed: the node ran again
        assert runs[call] == runs_at_kill[call] + 1, call
    for call in set(runs) - set(runs_at_kill):  # not started before the kill: once
        assert runs[call] == 1, call
    print(
        json.dumps(
            {
                "interrupted": len(interrupted),
                "checkpointed_calls": len(finished_calls),
                "rerun_in_flight_calls": len(in_flight),
            }
        )
    )


async def test_session_whose_model_cannot_be_rebuilt_fails_and_the_service_starts(workdir):
    """A session is resumed with the model it started with; when that model cannot be built
    any more (here: its API key is gone after a switch of LLM_MODEL), the restart must not
    fail: the session ends failed with the reason."""
    config = write_config(workdir, call_log=workdir / "calls.jsonl")
    with FakeChatCompletions(Script(tool_seconds=1.0), latency=0.5) as fake:
        quiet_disconnects(fake)
        service = ServiceProcess(workdir, service_env(fake, workdir, config))
        try:
            await service.start()
            client = Client(service)
            session = (await client.submit(alert("ns-0"), "k0"))["session_id"]
            deadline = time.monotonic() + 20
            while (await index_statuses(database_url(workdir)))[session] != "processing":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await service.kill()

            service.env = {  # another provider now; no OPENAI_API_KEY, no LLM_BASE_URL
                "LLM_MODEL": "xai:grok-4",
                "XAI_API_KEY": "not-used",
                "HISTORY_DATABASE_URL": database_url(workdir),
                "SRE_AGENT_CONFIG": str(config),
            }
            await service.start()
            (result,) = await client.wait_terminal({session}, limit=30)
        finally:
            await service.stop()
    assert result["status"] == "failed"
    assert result["error_message"].startswith("cannot resume after a restart: model openai:fake")
    assert "OPENAI_API_KEY" in result["error_message"]


async def test_unexpected_failure_in_the_worker_does_not_leave_the_session_processing(
    tmp_path, monkeypatch
):
    """A bug outside the graph (here: rendering the result) must end the session failed,
    not leave it "processing" until the next restart."""

    def explode(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("render exploded")

    monkeypatch.setattr("server.session_run.render_markdown", explode)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url=database_url(tmp_path),
    )
    async with serve(settings, ScriptedChatModel(responder=two_iterations)) as service:
        accepted = await service.submit()
        status = await service.wait_done(accepted["alert_id"])
        detail = (await service.client.get(accepted["session_url"])).json()
        events = await service.events(accepted["alert_id"])
    assert status["status"] == "failed"
    assert "render exploded" in status["error"]
    assert detail["status"] == "failed" and "render exploded" in detail["error_message"]
    assert events[-1]["event"] == "session_failed"
