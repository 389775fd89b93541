"""Fallback models with scripted models: which errors switch, that the switch sticks to
the session, and what the call record and the `degraded` event say. (The same through the
real OpenAI client and HTTP: tests/integration/test_openai_compatible.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import (
    ModelAuthenticationError,
    ModelConnectionError,
    ModelTimeoutError,
)
from langchain_core.messages import AIMessage, HumanMessage

from graph.analysis import PartialAnalysis
from graph.fallback import FallbackChatModel, ModelChain, should_fall_back, with_fallbacks
from graph.scripted_model import ModelRequest, ScriptedChatModel
from tests.test_graph import final, investigate, never_concludes


class ServiceUnavailable(Exception):
    status_code = 503


def fails(exc: Exception) -> Any:
    def step(request: ModelRequest) -> AIMessage:
        raise exc

    return step


@pytest.mark.parametrize(
    "exc",
    [
        ServiceUnavailable("down"),
        ModelTimeoutError("slow"),  # langchain's class: `OpenAITimeoutError` derives from it
        ModelConnectionError("refused"),
        TimeoutError(),
    ],
)
def test_transient_provider_errors_fall_back(exc):
    assert should_fall_back(exc)


@pytest.mark.parametrize(
    "exc", [ModelAuthenticationError("bad key"), ValueError("bad request"), KeyError("x")]
)
def test_other_errors_do_not(exc):
    assert not should_fall_back(exc)


def test_without_fallbacks_the_model_is_used_as_is():
    model = ScriptedChatModel()
    assert with_fallbacks("a:m", model, []) is model
    assert with_fallbacks("a:m", model, [("a:m", ScriptedChatModel())]) is model
    wrapped = with_fallbacks("a:m", model, [("b:m", ScriptedChatModel())])
    assert isinstance(wrapped, FallbackChatModel) and wrapped.primary == "a:m"


async def test_switch_sticks_to_the_session_and_is_reported():
    primary = ScriptedChatModel(script=[fails(ServiceUnavailable("overloaded"))])
    backup = ScriptedChatModel(responder=lambda r: AIMessage(content="backup here"))
    model = FallbackChatModel(models=[("p:one", primary), ("b:two", backup)])

    chain = model.bind_tools([])
    assert isinstance(chain, ModelChain)
    first = await chain.ainvoke_tracked([HumanMessage("hi")])
    assert (first.model, first.primary, first.fell_back) == ("b:two", "p:one", True)
    assert first.failures == [("p:one", "ServiceUnavailable: overloaded")]
    assert model.active == "b:two"

    structured = model.with_structured_output(PartialAnalysis, include_raw=True)
    second = await structured.ainvoke_tracked("again")
    assert second.model == "b:two" and second.failures == []
    assert len(primary.requests) == 1 and len(backup.requests) == 2

    # A fresh wrapper (the next session) starts with the primary again.
    again = FallbackChatModel(models=model.models)
    assert again.active == "p:one"


def test_plain_invoke_falls_back_too():
    primary = ScriptedChatModel(script=[fails(ModelTimeoutError("slow"))])
    backup = ScriptedChatModel(responder=lambda r: AIMessage(content="ok"))
    model = FallbackChatModel(models=[("p:one", primary), ("b:two", backup)])
    assert model.invoke("hi").text == "ok"  # as a plain chat model
    assert model.bind_tools([]).invoke("hi").text == "ok"


async def test_non_transient_errors_and_the_last_models_error_are_raised():
    primary = ScriptedChatModel(script=[fails(ModelAuthenticationError("bad key"))])
    backup = ScriptedChatModel(responder=lambda r: AIMessage(content="unused"))
    model = FallbackChatModel(models=[("p:one", primary), ("b:two", backup)])
    with pytest.raises(ModelAuthenticationError):
        await model.bind_tools([]).ainvoke("hi")
    assert backup.requests == []

    down = [ScriptedChatModel(script=[fails(ServiceUnavailable(name))]) for name in "ab"]
    model = FallbackChatModel(models=[("p:a", down[0]), ("p:b", down[1])])
    with pytest.raises(ServiceUnavailable, match="b"):
        await model.bind_tools([]).ainvoke("hi")


async def test_graph_records_the_answering_model_and_emits_degraded(make_context, sample_alert):
    primary = ScriptedChatModel(script=[fails(ServiceUnavailable("503 from primary"))])
    backup = ScriptedChatModel(script=[AIMessage(content="Nothing to check."), final()])
    model = FallbackChatModel(models=[("scripted:test", primary), ("scripted:backup", backup)])
    values, events = await investigate(make_context(model), sample_alert)

    assert values["status"] == "completed"
    assert values["tokens"] > 0
    degraded = [e for e in events if e["type"] == "degraded"]
    assert [(e["agent"], e["step"], e["iteration"]) for e in degraded] == [
        ("kubernetes", "select_tools", 1)
    ]
    assert degraded[0]["data"]["message"] == (
        "model scripted:test failed (ServiceUnavailable: 503 from primary); "
        "continuing with scripted:backup"
    )
    assert len(primary.requests) == 1 and len(backup.requests) == 2


async def test_no_fallback_no_change(make_context, sample_alert):
    """A plain model keeps the plain records: no fallback fields, no degraded events."""
    model = ScriptedChatModel(responder=never_concludes)
    values, events = await investigate(make_context(model), sample_alert)
    assert values["status"] == "completed"
    assert not [e for e in events if e["type"] == "degraded"]
