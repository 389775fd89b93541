"""The scripted model streams tool calls correctly and supports structured output."""

from __future__ import annotations

from langchain_core.tools import tool
from pydantic import BaseModel

from graph.scripted_model import ScriptedChatModel, calls, structured, tool_call


@tool
def get_pod(name: str, namespace: str) -> str:
    """Read a pod."""
    return name


class Verdict(BaseModel):
    analysis: str
    conclude: bool


async def test_streamed_tool_calls_reassemble():
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call("get_pod", name="a", namespace="n"),
                tool_call("get_pod", name="b", namespace="n"),
            )
        ]
    )
    merged = None
    chunks = 0
    async for chunk in model.bind_tools([get_pod]).astream("go"):
        merged = chunk if merged is None else merged + chunk
        chunks += 1
    assert chunks > 3
    assert [c["args"] for c in merged.tool_calls] == [
        {"name": "a", "namespace": "n"},
        {"name": "b", "namespace": "n"},
    ]
    assert merged.usage_metadata["total_tokens"] > 0
    assert model.requests[0].tool_names == ["get_pod"]


async def test_structured_output_through_tool_calling():
    model = ScriptedChatModel(script=[structured("Verdict", analysis="x", conclude=True)])
    result = await model.with_structured_output(Verdict, include_raw=True).ainvoke("go")
    assert result["parsed"] == Verdict(analysis="x", conclude=True)
    assert model.requests[0].structured_output == "Verdict"


async def test_running_out_of_script_is_an_error():
    model = ScriptedChatModel(script=[])
    try:
        await model.ainvoke("x")
    except RuntimeError as error:
        assert "ran out of responses" in str(error)
    else:
        raise AssertionError("expected an error")
