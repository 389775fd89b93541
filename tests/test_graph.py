"""The investigation graph end to end, with a scripted model and real stdio MCP servers."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_investigation_graph
from graph.config import AppConfig
from graph.runner import run_investigation
from graph.scripted_model import ModelRequest, ScriptedChatModel, calls, structured, tool_call
from graph.toolbox import Toolbox
from tests.conftest import SERVERS, ops_app_config


def final(**overrides: Any) -> AIMessage:
    values = {
        "summary": "s",
        "root_cause": "rc",
        "evidence": [],
        "remediation": ["fix"],
        "confidence": "medium",
    }
    return structured("RootCauseAnalysis", **{**values, **overrides})


def partial(text: str = "notes", conclude: bool = False) -> AIMessage:
    return structured("PartialAnalysis", analysis=text, conclude=conclude)


def never_concludes(request: ModelRequest) -> AIMessage:
    if request.structured_output == "PartialAnalysis":
        return partial("still looking", conclude=False)
    if request.structured_output == "RootCauseAnalysis":
        return final()
    return calls(tool_call("list_pods", namespace="billing"))


async def investigate(
    ctx: Any, alert: dict[str, Any], thread: str = "t", checkpointer: Any = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    graph = build_investigation_graph(ctx.registry, checkpointer=checkpointer)
    events: list[dict[str, Any]] = []
    values = await run_investigation(
        graph, thread_id=thread, context=ctx, alert=alert, on_event=events.append
    )
    return values, events


async def test_known_alert_type_routes_to_its_agent(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            calls(tool_call("get_namespace", name="billing")),
            partial("billing is Terminating [T1.1]", conclude=True),
            final(evidence=[{"finding": "Terminating", "tool_call": "T1.1"}], confidence="high"),
        ]
    )
    values, events = await investigate(make_context(model), sample_alert)

    assert values["status"] == "completed"
    assert values["agent"] == "kubernetes"
    assert values["mcp_servers"] == ["ops"]
    assert values["analysis"]["evidence"] == [{"finding": "Terminating", "tool_call": "T1.1"}]
    assert values["runbook"]["content"].startswith("# Namespace stuck")
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["session_started", "agent_selected", "runbook_fetched"]
    assert kinds[-2:] == ["final_analysis", "session_completed"]
    assert all(e["agent"] == "kubernetes" for e in events if e["type"] == "tool_call_started")
    assert {e["iteration"] for e in events if e["type"].startswith("tool_call")} == {1}


async def test_unknown_alert_type_fails_with_reason(make_context, sample_alert):
    model = ScriptedChatModel()
    values, events = await investigate(
        make_context(model), {**sample_alert, "alert_type": "DiskFull"}
    )
    assert values["status"] == "failed"
    assert values["error"] == "No specialized agent for alert type 'DiskFull'"
    assert events[-1]["type"] == "session_failed"
    assert events[-1]["data"]["error"] == "No specialized agent for alert type 'DiskFull'"
    assert model.requests == []  # no model spend without an agent


async def test_iteration_bound_forces_final_analysis_without_tools(make_context, sample_alert):
    model = ScriptedChatModel(responder=never_concludes)
    values, _ = await investigate(make_context(model), sample_alert)

    assert values["analysis"]["stop_reason"] == "max_iterations"
    assert values["analysis"]["iterations"] == 3  # the agent's max_iterations
    assert [c["ref"] for c in values["tool_calls"]] == ["T1.1", "T2.1", "T3.1"]
    last = model.requests[-1]
    assert last.structured_output == "RootCauseAnalysis"
    assert last.tool_names == ["RootCauseAnalysis"]  # no investigation tools offered
    assert "reached its iteration limit" in last.text


class _WriteRecorder(InMemorySaver):
    """Remembers the channels of every task's writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[set[str]] = []

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self.written.append({channel for channel, _ in writes})
        await super().aput_writes(config, writes, task_id, task_path)


async def test_a_step_writes_only_what_it_changed(make_context, sample_alert):
    saver = _WriteRecorder()
    values, _ = await investigate(
        make_context(ScriptedChatModel(responder=never_concludes)), sample_alert, checkpointer=saver
    )

    assert values["status"] == "completed" and values["degraded"] == []
    selects = [w for w in saver.written if "pending" in w and "llm_call" in w]
    partials = [w for w in saver.written if "findings" in w and "llm_call" in w]
    assert len(selects) == len(partials) == 3
    # the agent's start time and its (empty) list of degradations: written once
    assert ["started_at" in w for w in selects] == [True, False, False]
    assert ["degraded" in w for w in selects] == [True, False, False]
    # "go on" is not written again each iteration; the budget's stop is
    assert [bool(w & {"conclude", "stop_reason"}) for w in partials] == [False, False, True]


async def test_model_may_conclude_early(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            AIMessage(content="The alert message already shows the cause."),
            final(summary="early"),
        ]
    )
    values, events = await investigate(make_context(model), sample_alert)
    assert values["status"] == "completed"
    assert values["analysis"]["stop_reason"] == "model_concluded"
    assert values["analysis"]["iterations"] == 1
    assert values["tool_calls"] == []
    assert not [e for e in events if e["type"] == "tool_call_started"]


async def test_tool_calls_of_one_iteration_run_concurrently(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call("slow", seconds=0.6, label="a"),
                tool_call("slow", seconds=0.6, label="b"),
                tool_call("slow", seconds=0.6, label="c"),
            ),
            partial(conclude=True),
            final(),
        ]
    )
    values, _ = await investigate(make_context(model), sample_alert)

    spans = []
    for call in values["tool_calls"]:
        start = datetime.fromisoformat(call["started_at"]).timestamp()
        spans.append((start, start + call["duration_ms"] / 1000))
    # Every call started before every other call finished: they overlapped in time.
    assert max(s for s, _ in spans) < min(e for _, e in spans)


async def test_agent_cannot_call_tools_outside_its_servers(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call("delete_everything", namespace="billing"),
                tool_call("get_namespace", name="billing"),
            ),
            partial(conclude=True),
            final(),
        ]
    )
    values, _ = await investigate(make_context(model), sample_alert)

    first = model.requests[0]
    assert "delete_everything" not in first.tool_names  # not offered...
    assert set(first.tool_names) == {
        "get_namespace",
        "list_pods",
        "slow",
        "broken",
        "big",
        "show_secret",
    }
    # the destructive and the unannotated tools are kept from the model by the policy
    assert not {"delete_namespace", "unannotated"} & set(first.tool_names)
    refused, ok = values["tool_calls"]
    assert refused["status"] == "refused" and refused["server"] is None
    assert ok["status"] == "ok"
    # ...and refused with an error the model reads at the next step
    assert (
        "tool 'delete_everything' is not available to the kubernetes agent"
        in model.requests[1].text
    )
    assert "Valid tools: big, broken, get_namespace, list_pods, show_secret, slow" in (
        model.requests[1].text
    )


async def test_failing_tool_becomes_an_error_the_model_reads(make_context, sample_alert):
    model = ScriptedChatModel(script=[calls(tool_call("broken")), partial(conclude=True), final()])
    values, events = await investigate(make_context(model), sample_alert)
    assert values["tool_calls"][0]["status"] == "error"
    assert "backend exploded" in model.requests[1].text
    finished = next(e for e in events if e["type"] == "tool_call_finished")
    assert finished["data"]["status"] == "error"


async def test_tool_output_is_capped_with_a_marker(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[calls(tool_call("big", size=50_000)), partial(conclude=True), final()]
    )
    values, _ = await investigate(make_context(model, tool_output_max_bytes=1000), sample_alert)
    record = values["tool_calls"][0]
    assert record["size"] == 50_000 and record["truncated"] is True
    prompt = model.requests[1].text
    assert "[output truncated: showing 1000 of 50000 bytes]" in prompt
    assert "x" * 1001 not in prompt


async def test_mcp_server_down_at_start_agent_goes_on(make_context, sample_alert):
    config = AppConfig.model_validate(
        {
            "mcpServers": {
                **{k: v.model_dump() for k, v in ops_app_config().mcp_servers.items()},
                "crashy": {
                    "command": sys.executable,
                    "args": [str(SERVERS / "ops_server.py"), "--crash-on-start"],
                },
                "missing": {"command": "/nonexistent/mcp-server"},
            },
            "agents": {
                "kubernetes": {
                    "mcp_servers": ["crashy", "missing", "ops"],
                    "alert_types": ["NamespaceTerminating"],
                }
            },
        }
    )
    async with Toolbox(config.mcp_servers, startup_timeout=20) as toolbox:
        status = toolbox.status()
        assert status["crashy"].state == "down" and status["missing"].state == "down"
        assert "command not found" in (status["missing"].error or "")
        model = ScriptedChatModel(
            script=[
                calls(tool_call("list_pods", namespace="billing")),
                partial(conclude=True),
                final(),
            ]
        )
        values, events = await investigate(
            make_context(model, config=config, toolbox=toolbox), sample_alert
        )
    assert values["status"] == "completed"
    assert values["tool_calls"][0]["status"] == "ok"
    assert any("crashy" in d for d in values["degraded"])
    assert any("missing" in d for d in values["degraded"])
    warnings = [e["data"]["message"] for e in events if e["type"] == "degraded"]
    assert len(warnings) == 2
    assert "Unavailable tool servers" in model.requests[0].text


async def test_agent_with_no_working_server_concludes_without_tools(make_context, sample_alert):
    config = AppConfig.model_validate(
        {
            "mcpServers": {"missing": {"command": "/nonexistent/mcp-server"}},
            "agents": {
                "kubernetes": {"mcp_servers": ["missing"], "alert_types": ["NamespaceTerminating"]}
            },
        }
    )
    async with Toolbox(config.mcp_servers) as toolbox:
        model = ScriptedChatModel(script=[final(confidence="low")])
        values, _ = await investigate(
            make_context(model, config=config, toolbox=toolbox), sample_alert
        )
    assert values["status"] == "completed"
    assert values["analysis"]["stop_reason"] == "no_tools"
    assert "No tool server is available" in model.requests[0].text


async def test_runbook_failure_is_recorded_and_investigation_goes_on(make_context, sample_alert):
    model = ScriptedChatModel(script=[AIMessage(content="done"), final()])
    values, events = await investigate(
        make_context(model), {**sample_alert, "runbook": "../../etc/passwd"}
    )
    assert values["status"] == "completed"
    assert "RUNBOOKS_DIR" in values["runbook"]["error"]
    assert "No runbook is available" in model.requests[0].text
    fetched = next(e for e in events if e["type"] == "runbook_fetched")
    assert fetched["data"]["error"] == values["runbook"]["error"]


async def test_evidence_citing_unknown_calls_is_flagged(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            calls(tool_call("list_pods", namespace="billing")),
            partial(conclude=True),
            final(
                evidence=[
                    {"finding": "real", "tool_call": "T1.1"},
                    {"finding": "made up", "tool_call": "T9.9"},
                ]
            ),
        ]
    )
    values, _ = await investigate(make_context(model), sample_alert)
    real, made_up = values["analysis"]["evidence"]
    assert real == {"finding": "real", "tool_call": "T1.1"}
    assert made_up["tool_call"] == "unverified" and "T9.9" in made_up["finding"]


async def test_resume_after_exception_continues_from_last_checkpoint(make_context, sample_alert):
    def explode(request: ModelRequest) -> AIMessage:
        raise RuntimeError("provider went away")

    first = ScriptedChatModel(
        script=[
            calls(tool_call("get_namespace", name="billing")),
            partial("iteration one"),
            calls(tool_call("list_pods", namespace="billing")),
            explode,
        ]
    )
    saver = InMemorySaver()
    values, _ = await investigate(make_context(first), sample_alert, "resume", saver)
    assert values["status"] == "failed" and "provider went away" in values["error"]

    second = ScriptedChatModel(script=[partial("iteration two", conclude=True), final()])
    graph = build_investigation_graph(make_context(second).registry, checkpointer=saver)
    events: list[dict[str, Any]] = []
    values = await run_investigation(
        graph, thread_id="resume", context=make_context(second), alert=None, on_event=events.append
    )

    assert values["status"] == "completed"
    # The resumed run starts at the node that failed: no tool is run again, the first model
    # call is iteration 2's partial analysis, and it still sees iteration 2's results.
    assert not [e for e in events if e["type"] in ("tool_call_started", "agent_selected")]
    assert second.requests[0].structured_output == "PartialAnalysis"
    assert "Iteration 2 of at most 3" in second.requests[0].text
    assert '<tool_result ref="T2.1" tool="list_pods"' in second.requests[0].text
    assert [c["ref"] for c in values["tool_calls"]] == ["T1.1", "T2.1"]


async def test_token_budget_forces_the_final_analysis(make_context, sample_alert):
    model = ScriptedChatModel(responder=never_concludes)
    config = ops_app_config(max_tokens=1000, max_iterations=10)
    values, _ = await investigate(make_context(model, config=config), sample_alert)
    analysis = values["analysis"]
    assert analysis["stop_reason"] == "max_tokens"
    assert analysis["iterations"] < 10
    assert values["tokens"] >= 1000
    assert "used its token budget" in model.requests[-1].text


async def test_time_budget_forces_the_final_analysis(make_context, sample_alert):
    model = ScriptedChatModel(responder=never_concludes, latency=0.02)  # > the budget
    config = ops_app_config(max_duration=0.01, max_iterations=10)
    values, _ = await investigate(make_context(model, config=config), sample_alert)
    assert values["analysis"]["stop_reason"] == "max_duration"
    assert values["analysis"]["iterations"] == 1
    assert "used its time budget" in model.requests[-1].text


class SlowToAnswer(ScriptedChatModel):
    """Answers at once, except when asked for `slow_schema`: that takes far longer than allowed."""

    slow_schema: str = "PartialAnalysis"

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        tools = [t["function"]["name"] for t in kw.get("tools") or []]
        if tools == [self.slow_schema]:
            await asyncio.sleep(60)
        return await super()._agenerate(messages, stop, run_manager, **kw)


async def test_the_time_budget_cuts_a_model_call_that_outlasts_it(make_context, sample_alert):
    model = SlowToAnswer(responder=never_concludes, slow_schema="PartialAnalysis")
    config = ops_app_config(max_duration=1.0, max_iterations=10)
    started = time.monotonic()
    values, events = await investigate(make_context(model, config=config), sample_alert)

    assert time.monotonic() - started < 30  # the 60 s answer was not waited for
    assert values["status"] == "completed"
    assert values["analysis"]["stop_reason"] == "max_duration"
    # iteration 1's results still reach the final analysis
    assert [c["ref"] for c in values["tool_calls"]] == ["T1.1"]
    assert model.requests[-1].structured_output == "RootCauseAnalysis"
    assert '<tool_result ref="T1.1"' in model.requests[-1].text
    warnings = [e["data"]["message"] for e in events if e["type"] == "degraded"]
    assert warnings == [
        "the time budget (1 s) ran out while the model was answering partial_analysis; "
        "going on to the final analysis"
    ]


async def test_a_final_analysis_not_written_in_time_ends_with_the_findings(
    make_context, sample_alert
):
    """With the time budget spent, the final analysis still gets one model request's time
    (`model_timeout`); a model that takes longer is abandoned, and the session ends with
    the running notes, at low confidence, saying so."""
    # iteration 1 (two model calls) fits the budget; iteration 2 does not
    model = SlowToAnswer(responder=never_concludes, slow_schema="RootCauseAnalysis", latency=0.15)
    config = ops_app_config(max_duration=0.5, max_iterations=10)
    context = make_context(model, config=config, model_timeout=1.0)
    started = time.monotonic()
    values, events = await investigate(context, sample_alert)

    assert time.monotonic() - started < 30  # the 60 s answer was not waited for
    assert values["status"] == "completed"
    analysis = values["analysis"]
    assert analysis["stop_reason"] == "max_duration"
    assert analysis["confidence"] == "low"
    assert analysis["root_cause"] == "Not determined: the final analysis was not written in time."
    assert "within 1 s" in analysis["summary"] and "still looking" in analysis["summary"]
    warnings = [e["data"]["message"] for e in events if e["type"] == "degraded"]
    assert warnings[-1] == (
        "the model did not write the final analysis within 1 s; "
        "the session ends with the findings so far"
    )
    finals = [e for e in events if e["type"] == "final_analysis"]
    assert [e["data"]["analysis"] for e in finals] == [analysis]


async def test_results_are_masked_and_blocked_calls_recorded(make_context, sample_alert):
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call("show_secret", name="db"), tool_call("delete_namespace", name="billing")
            ),
            partial(conclude=True),
            final(),
        ]
    )
    values, events = await investigate(make_context(model), sample_alert)
    secret, delete = values["tool_calls"]
    assert secret["status"] == "ok" and secret["masked"] >= 3
    assert delete["status"] == "blocked" and delete["server"] == "ops"
    prompt = model.requests[1].text
    for value in ("c3VwZXJzZWNyZXQ=", "plain-token-value", "hunter2"):
        assert value not in prompt
    assert "blocked by the ops server's policy: not annotated read-only" in prompt
    finished = [e["data"] for e in events if e["type"] == "tool_call_finished"]
    assert {f["tool"]: f["masked"] for f in finished}["show_secret"] == secret["masked"]
