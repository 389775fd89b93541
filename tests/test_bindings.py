"""Shaped models are built once per (model, tools) and (model, schema) and shared; the
two-step structured call answers exactly what LangChain's `include_raw=True` answers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool

from graph.analysis import PartialAnalysis, RootCauseAnalysis
from graph.bindings import ModelBindings, StructuredOutput
from graph.fallback import FallbackChatModel, ModelChain
from graph.scripted_model import ScriptedChatModel, structured

PROMPT = [HumanMessage("what happened?")]


def tool(name: str) -> StructuredTool:
    async def run(target: str) -> str:
        return target

    return StructuredTool.from_function(coroutine=run, name=name, description=name)


def answering(*responses: Any) -> ScriptedChatModel:
    return ScriptedChatModel(script=list(responses))


def test_the_same_model_and_tools_share_one_binding():
    model, bindings = answering(), ModelBindings()
    get, describe = tool("get"), tool("describe")
    first = bindings.tools(model, [get, describe])
    assert bindings.tools(model, [get, describe]) is first
    assert bindings.tools(model, [get]) is not first
    assert bindings.tools(answering(), [get, describe]) is not first
    assert bindings.structured(model, PartialAnalysis) is bindings.structured(
        model, PartialAnalysis
    )


def test_the_cache_is_bounded():
    model, bindings = answering(), ModelBindings(limit=3)
    tools = [tool(f"t{n}") for n in range(5)]
    for t in tools:
        bindings.tools(model, [t])
    assert len(bindings) == 3


async def test_bound_tools_reach_the_model():
    model = answering(AIMessage(content="done"))
    await ModelBindings().tools(model, [tool("get")]).ainvoke(PROMPT)
    assert model.requests[0].tool_names == ["get"]


async def test_structured_answers_match_langchains_include_raw():
    answer = structured("PartialAnalysis", analysis="finalizer stuck (T1.1)", conclude=True)
    ours = await ModelBindings().structured(answering(answer), PartialAnalysis).ainvoke(PROMPT)
    theirs = (
        await answering(answer)
        .with_structured_output(PartialAnalysis, include_raw=True)
        .ainvoke(PROMPT)
    )
    assert (
        ours["parsed"]
        == theirs["parsed"]
        == PartialAnalysis(analysis="finalizer stuck (T1.1)", conclude=True)
    )
    assert ours["raw"].tool_calls == theirs["raw"].tool_calls
    assert ours["parsing_error"] is theirs["parsing_error"] is None


async def test_an_unparseable_answer_keeps_the_raw_message_and_the_error():
    bad = structured("RootCauseAnalysis", summary="s")  # required fields missing
    runnable = ModelBindings().structured(answering(bad), RootCauseAnalysis)
    result = runnable.invoke(PROMPT)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], Exception)
    assert result["raw"].tool_calls[0]["args"] == {"summary": "s"}


async def test_model_errors_are_raised_not_reported_as_parsing_errors():
    def boom(request: Any) -> AIMessage:
        raise ConnectionError("provider down")

    runnable = ModelBindings().structured(answering(boom), PartialAnalysis)
    assert isinstance(runnable, StructuredOutput)
    with pytest.raises(ConnectionError):
        await runnable.ainvoke(PROMPT)


def test_fallback_models_get_a_chain_of_shared_bindings():
    primary, spare = answering(), answering()
    session = FallbackChatModel(models=[("a:primary", primary), ("b:spare", spare)])
    bindings, tools = ModelBindings(), [tool("get")]
    chain = bindings.tools(session, tools)
    assert isinstance(chain, ModelChain)
    assert [label for label, _ in chain.steps] == ["a:primary", "b:spare"]
    assert chain.steps[0][1] is bindings.tools(primary, tools)
    assert chain.steps[1][1] is bindings.tools(spare, tools)


async def test_a_parser_that_is_not_an_output_parser_is_invoked():
    # Some providers' structured output ends in a plain runnable instead of an output parser.
    from langchain_core.runnables import RunnableLambda

    answer = AIMessage(content='{"analysis": "x", "conclude": false}')
    parser = RunnableLambda(lambda message: PartialAnalysis.model_validate_json(message.text))
    result = await StructuredOutput(answering(answer), parser).ainvoke(PROMPT)
    assert result["parsed"] == PartialAnalysis(analysis="x", conclude=False)
    failing = RunnableLambda(lambda message: PartialAnalysis.model_validate_json("{}"))
    result = await StructuredOutput(answering(answer), failing).ainvoke(PROMPT)
    assert result["parsed"] is None and result["parsing_error"] is not None
