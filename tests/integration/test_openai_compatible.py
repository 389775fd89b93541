"""A whole investigation through the real langchain-openai client against a local
OpenAI-compatible server (tests/fakes/chat_completions.py), with LLM_MODEL and LLM_BASE_URL
as a user sets them: tool definitions, tool results, structured output and token usage on
the wire, streamed and not, and the fallback models on provider errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_investigation_graph
from graph.context import Context
from graph.fallback import FallbackChatModel
from graph.models import build_fallback_models
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.runner import run_investigation
from graph.services import Services, load_model
from graph.settings import Settings
from graph.state import LLMCallRecord
from graph.toolbox import Toolbox
from server.history import load_checkpoints
from tests.conftest import ops_app_config
from tests.fakes.chat_completions import ChatRequest, FakeChatCompletions, Reply

FINALIZER = "billing.example.com/invoice-protection"  # in the ops server's get_namespace


def investigator(request: ChatRequest) -> Reply:
    """An SRE model, scripted from the request: tools chosen from those offered and the
    alert, analyses that cite the results they were shown."""
    match = re.search(r"^namespace: (\S+)$", request.text, re.MULTILINE)
    namespace = match.group(1) if match else "default"
    if request.structured_output == "PartialAnalysis":
        seen = FINALIZER in request.text  # the tool results are in this prompt
        return Reply.values(
            analysis=f"{namespace} is Terminating, held by finalizer {FINALIZER} [T1.1]"
            if seen
            else "no data yet",
            conclude=False,
        )
    if request.structured_output == "RootCauseAnalysis":
        return Reply.values(
            summary=f"Namespace {namespace} cannot finish deleting.",
            root_cause=f"The finalizer {FINALIZER} is never removed.",
            evidence=[{"finding": "namespace Terminating with a finalizer", "tool_call": "T1.1"}],
            remediation=["Find the controller owning the finalizer."],
            confidence="high",
        )
    if "[T1.1]" in request.text:  # iteration 2: the findings suffice
        return Reply.text("The finalizer explains the alert; no more tools are needed.")
    wanted = {"get_namespace": {"name": namespace}, "list_pods": {"namespace": namespace}}
    return Reply.calls(*[(t, wanted[t]) for t in request.tool_names if t in wanted])


@pytest.fixture
def fake() -> Iterator[FakeChatCompletions]:
    with FakeChatCompletions(investigator) as server:
        yield server


def settings_for(server: FakeChatCompletions, **values: Any) -> Settings:
    values = {
        "llm_model": "openai:some-model",
        "llm_base_url": server.base_url,
        "llm_timeout": 10,
        "llm_max_retries": 0,
        **values,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def services(ops_toolbox: Toolbox, runbooks_dir: Path, monkeypatch) -> Any:
    """`Services` built as the app builds them (model, fallbacks) over the test servers."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "LLM_FALLBACK_MODELS"):
        monkeypatch.delenv(name, raising=False)

    def make(settings: Settings) -> Services:
        registry = AgentRegistry(ops_app_config())
        choice, model = load_model(settings)
        return Services(
            settings=settings,
            config=registry.config,
            registry=registry,
            model_choice=choice,
            model=model,
            toolbox=ops_toolbox,
            runbooks=RunbookFetcher(runbooks_dir=runbooks_dir),
            fallback_models=build_fallback_models(settings),
        )

    return make


async def llm_calls(saver: InMemorySaver, thread: str) -> list[LLMCallRecord]:
    """Every model call record of a run, in order (as the history reads them)."""
    calls = [
        value
        for tup in await load_checkpoints(saver, thread)
        for _, channel, value in tup.pending_writes or []
        if channel == "llm_call" and value
    ]
    return sorted(calls, key=lambda c: c["started_at"])


async def investigate(
    ctx: Context, alert: dict[str, Any], *, thread: str = "t", stream_tokens: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]], list[LLMCallRecord], int]:
    """Run the graph; `stream_tokens` streams it in "messages" mode too (as LangGraph
    Studio does), which makes the chat model stream its answers."""
    saver = InMemorySaver()
    graph = build_investigation_graph(ctx.registry, checkpointer=saver)
    events: list[dict[str, Any]] = []
    chunks = 0
    if not stream_tokens:
        values = await run_investigation(
            graph, thread_id=thread, context=ctx, alert=alert, on_event=events.append
        )
    else:
        values = {}
        async for namespace, mode, chunk in graph.astream(
            {"alert": alert},
            {"configurable": {"thread_id": thread}},
            context=ctx,
            stream_mode=["custom", "values", "messages"],
            subgraphs=True,
        ):
            if mode == "messages":
                chunks += 1
            elif mode == "custom":
                events.append(chunk)
            elif mode == "values" and not namespace:
                values = chunk
    return values, events, await llm_calls(saver, thread), chunks


# Streamed json_schema answers make langchain-openai dump the SDK's parsed snapshot, which
# pydantic warns about (upstream: langchain-ai/langchain#38034); the answers are fine.
UPSTREAM_WARNING = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


@pytest.mark.parametrize(
    "stream_tokens",
    [pytest.param(False, id="plain"), pytest.param(True, id="streamed", marks=UPSTREAM_WARNING)],
)
async def test_investigation_through_openai_compatible_endpoint(
    fake, services, ops_toolbox, sample_alert, stream_tokens
):
    svc = services(settings_for(fake))
    ctx = svc.context()
    assert ctx.model_name == "openai:some-model"
    values, _, records, chunks = await investigate(ctx, sample_alert, stream_tokens=stream_tokens)

    assert values["status"] == "completed", values.get("error")
    assert values["analysis"]["confidence"] == "high"
    assert values["analysis"]["evidence"] == [
        {"finding": "namespace Terminating with a finalizer", "tool_call": "T1.1"}
    ]
    assert [(c["ref"], c["tool"], c["status"]) for c in values["tool_calls"]] == [
        ("T1.1", "get_namespace", "ok"),
        ("T1.2", "list_pods", "ok"),
    ]
    requests = fake.requests
    assert [r.model for r in requests] == ["some-model"] * 4
    assert all(r.headers["authorization"] == "Bearer not-needed" for r in requests)
    assert all(r.stream is stream_tokens for r in requests)
    if stream_tokens:
        assert chunks > 4  # tokens reached the stream
        assert all(r.include_usage for r in requests)  # stream_usage on for LLM_BASE_URL

    # select_tools (1) → partial (1) → select_tools (2, concludes) → final
    select1, partial, select2, final = requests
    agent_tools = set(ops_toolbox.tools_for(["ops"]))
    for select in (select1, select2):
        assert set(select.tool_names) == agent_tools  # the agent's own tools, all of them
        assert select.structured_output is None
    assert "delete_everything" not in agent_tools  # the other agent's server's tool
    for structured, schema in ((partial, "PartialAnalysis"), (final, "RootCauseAnalysis")):
        assert structured.structured_output == schema
        assert structured.response_format is not None  # langchain-openai's json_schema
        assert structured.tool_names == []  # no investigation tools at analysis steps

    # Tool results reached the model: first in the partial analysis prompt, then (as the
    # findings and call log) in the later prompts.
    assert FINALIZER not in select1.text
    assert FINALIZER in partial.text and '"phase":"Running"' in partial.text.replace(" ", "")
    assert "[T1.1] get_namespace" in select2.text and FINALIZER in select2.text
    assert FINALIZER in final.text

    # Usage as the server reported it, per call and summed for the session.
    assert [c["step"] for c in records] == [
        "select_tools",
        "partial_analysis",
        "select_tools",
        "final_analysis",
    ]
    for record, request in zip(records, requests, strict=True):
        assert request.usage is not None
        assert record["model"] == "openai:some-model" and "fallback_from" not in record
        assert record["usage"] == {
            "input_tokens": request.usage["prompt_tokens"],
            "output_tokens": request.usage["completion_tokens"],
            "total_tokens": request.usage["total_tokens"],
        }
    assert values["tokens"] == sum(r.usage["total_tokens"] for r in requests if r.usage)
    assert values["tokens"] > 0


@pytest.mark.parametrize(
    "stream_tokens",
    [pytest.param(False, id="plain"), pytest.param(True, id="streamed", marks=UPSTREAM_WARNING)],
)
async def test_fallback_model_continues_the_session(fake, services, sample_alert, stream_tokens):
    fake.fail(500, model="primary-model", retry_after=0.01)
    svc = services(
        settings_for(
            fake,
            llm_model="openai:primary-model",
            llm_fallback_models="openai:backup-model, openai:primary-model",
            llm_max_retries=1,
        )
    )
    ctx = svc.context()
    assert isinstance(ctx.model, FallbackChatModel)
    assert [label for label, _ in ctx.model.models] == [
        "openai:primary-model",
        "openai:backup-model",
    ]
    values, events, records, _ = await investigate(ctx, sample_alert, stream_tokens=stream_tokens)

    assert values["status"] == "completed", values.get("error")
    assert all(r.stream is stream_tokens for r in fake.requests)
    # The primary failed its first call and its one retry; then the session stayed on the
    # backup: no more attempts at the primary.
    assert [r.model for r in fake.requests] == ["primary-model"] * 2 + ["backup-model"] * 4
    assert [r.status for r in fake.requests] == [500, 500, 200, 200, 200, 200]
    assert all(r["model"] == "openai:backup-model" for r in records)
    assert all(r["fallback_from"] == "openai:primary-model" for r in records)
    assert len(records[0]["fallback_errors"]) == 1
    assert records[0]["fallback_errors"][0].startswith("openai:primary-model: ")
    assert "injected failure 500" in records[0]["fallback_errors"][0]
    assert all("fallback_errors" not in r for r in records[1:])
    degraded = [e for e in events if e["type"] == "degraded"]
    assert len(degraded) == 1
    event = degraded[0]
    assert (event["agent"], event["step"], event["iteration"]) == ("kubernetes", "select_tools", 1)
    assert event["data"]["model"] == "openai:backup-model"
    assert event["data"]["failed"] == ["openai:primary-model"]
    assert "continuing with openai:backup-model" in event["data"]["message"]
    assert values["tokens"] == sum(r.usage["total_tokens"] for r in fake.requests if r.usage)


async def test_rate_limit_within_the_retries_needs_no_fallback(fake, services, sample_alert):
    fake.fail(429, times=2, retry_after=0.01)
    svc = services(settings_for(fake, llm_fallback_models="openai:backup-model", llm_max_retries=2))
    values, events, records, _ = await investigate(svc.context(), sample_alert)

    assert values["status"] == "completed", values.get("error")
    assert [r.status for r in fake.requests][:3] == [429, 429, 200]
    assert {r.model for r in fake.requests} == {"some-model"}
    assert all("fallback_from" not in r for r in records)
    assert not [e for e in events if e["type"] == "degraded"]


async def test_timeout_falls_back(fake, services, sample_alert):
    fake.fail(504, model="some-model", delay=1.0)  # answers after the client gave up
    svc = services(settings_for(fake, llm_fallback_models="openai:backup-model", llm_timeout=0.25))
    values, events, records, _ = await investigate(svc.context(), sample_alert)

    assert values["status"] == "completed", values.get("error")
    assert records[0]["model"] == "openai:backup-model"
    assert "Timeout" in records[0]["fallback_errors"][0]
    assert [e["data"]["failed"] for e in events if e["type"] == "degraded"] == [
        ["openai:some-model"]
    ]


async def test_request_errors_do_not_fall_back(fake, services, sample_alert):
    fake.fail(400, model="some-model", message="bad request: unsupported parameter")
    svc = services(settings_for(fake, llm_fallback_models="openai:backup-model"))
    values, events, _, _ = await investigate(svc.context(), sample_alert)

    assert values["status"] == "failed"
    assert "unsupported parameter" in values["error"]
    assert {r.model for r in fake.requests} == {"some-model"}
    assert not [e for e in events if e["type"] == "degraded"]
