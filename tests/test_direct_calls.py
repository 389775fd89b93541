"""Model and tool calls skip LangChain's run machinery only when nothing listens, and
answer exactly what the full path answers; with a listener (a callback handler, Studio's
event stream, LangSmith tracing) every call is still reported."""

from __future__ import annotations

from typing import Any

import langsmith
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.tools import convert_mcp_tool_to_langchain_tool
from langgraph.graph import END, START, StateGraph
from mcp.types import CallToolResult, TextContent
from mcp.types import Tool as MCPTool
from pydantic import Field
from typing_extensions import TypedDict

from graph.direct_calls import ainvoke_model, ainvoke_tool, listened, parse_message

PROMPT: list[BaseMessage] = [HumanMessage("what happened?")]
CALL = {"name": "get_pods", "args": {"namespace": "billing"}, "id": "call-1"}


class RecordingModel(BaseChatModel):
    """Answers with a tool call and usage; records the keyword arguments it was given."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        raise NotImplementedError

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(dict(kwargs))
        message = AIMessage(
            content=f"{len(messages)} messages",
            tool_calls=[{"name": "get_pods", "args": {"namespace": "billing"}, "id": "c1"}],
            usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class Session:
    """What langchain-mcp-adapters calls on an MCP client session."""

    def __init__(self, result: CallToolResult) -> None:
        self.result = result

    async def call_tool(self, name: str, args: dict[str, Any], **kwargs: Any) -> CallToolResult:
        return self.result


def mcp_tool(result: CallToolResult, *, handle_tool_errors: bool = True) -> BaseTool:
    """An MCP tool as the adapters convert it for the toolbox."""
    schema = {"type": "object", "properties": {"namespace": {"type": "string"}}}
    spec = MCPTool(name="get_pods", description="List pods", inputSchema=schema)
    return convert_mcp_tool_to_langchain_tool(
        Session(result),  # type: ignore[arg-type]
        spec,
        handle_tool_errors=handle_tool_errors,
    )


def text(value: str, *, error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=value)], isError=error)


class Recorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.events: list[str] = []

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.events.append("model")

    async def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        self.events.append("tool")


class State(TypedDict):
    heard: bool
    answer: str
    tool: str


def graph_calling(model: Any, tool: BaseTool) -> Any:
    """A one-node graph whose node calls the model and the tool as our nodes do."""

    async def node(state: State) -> dict[str, Any]:
        answer = await ainvoke_model(model, PROMPT)
        result = await ainvoke_tool(tool, CALL)
        return {"heard": listened(), "answer": answer.text, "tool": result.text}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    return builder.compile()


def same_message(a: BaseMessage, b: BaseMessage) -> None:
    """Equal but for ids: the run id LangChain's path stamps on a model's answer, and the
    adapters' fresh id for each content block."""

    def shape(message: BaseMessage) -> dict[str, Any]:
        dump = message.model_dump(exclude={"id", "response_metadata"})
        if isinstance(dump["content"], list):
            dump["content"] = [
                {k: v for k, v in block.items() if k != "id"} for block in dump["content"]
            ]
        return dump

    assert shape(a) == shape(b)


async def test_a_model_call_answers_as_the_full_path_and_keeps_tracing_only_arguments_back():
    model = RecordingModel()
    tracing = {"kwargs": {"method": "function_calling"}, "schema": {"title": "Answer"}}
    bound = model.bind(tools=[{"name": "get_pods"}], ls_structured_output_format=tracing)
    direct = await ainvoke_model(bound, PROMPT)
    full = await bound.ainvoke(PROMPT)
    same_message(direct, full)
    assert direct.tool_calls[0]["name"] == "get_pods"
    assert direct.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    # neither path hands the tracing-only argument to the provider
    assert model.seen == [{"tools": [{"name": "get_pods"}]}] * 2


async def test_a_model_call_still_waits_for_the_models_rate_limiter():
    class Limiter(BaseRateLimiter):
        def __init__(self) -> None:
            self.acquired = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            raise NotImplementedError

        async def aacquire(self, *, blocking: bool = True) -> bool:
            self.acquired += 1
            return True

    limiter = Limiter()
    model = RecordingModel(rate_limiter=limiter)
    await ainvoke_model(model, PROMPT)
    assert limiter.acquired == 1


@pytest.mark.parametrize(
    "result",
    [text("pod-a Running"), text("pods is forbidden", error=True)],
    ids=["answer", "tool-error"],
)
async def test_an_mcp_tool_call_answers_as_the_full_path(result: CallToolResult):
    tool = mcp_tool(result)
    direct = await ainvoke_tool(tool, CALL)
    full = await tool.ainvoke({"type": "tool_call", **CALL})
    assert isinstance(direct, ToolMessage)
    same_message(direct, full)
    assert direct.status == ("error" if result.isError else "success")


async def test_a_tool_that_does_not_handle_its_errors_raises_them_on_both_paths():
    tool = mcp_tool(text("pods is forbidden", error=True), handle_tool_errors=False)
    with pytest.raises(ToolException):
        await ainvoke_tool(tool, CALL)
    with pytest.raises(ToolException):
        await tool.ainvoke({"type": "tool_call", **CALL})


async def test_other_tools_keep_langchains_argument_validation():
    async def get(namespace: int) -> str:
        return str(namespace)

    tool = StructuredTool.from_function(coroutine=get, name="get_pods", description="pods")
    with pytest.raises(ValueError, match="namespace"):  # pydantic's ValidationError
        await ainvoke_tool(tool, CALL)


def test_a_parser_gets_the_answer_directly_or_through_invoke_alike():
    from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser

    parser = JsonOutputKeyToolsParser(key_name="get_pods", first_tool_only=True)
    message = AIMessage(content="", tool_calls=[{"name": "get_pods", "args": {"a": 1}, "id": "1"}])
    assert parse_message(parser, message) == parser.invoke(message) == {"a": 1}


async def test_a_model_with_callbacks_of_its_own_still_reports_its_calls():
    recorder = Recorder()
    model = RecordingModel(callbacks=[recorder])
    await ainvoke_model(model.bind(tools=[{"name": "get_pods"}]), PROMPT)
    await ainvoke_model(model, PROMPT)
    assert recorder.events == ["model", "model"]


async def test_nothing_listens_to_a_plain_run_so_the_calls_go_direct():
    graph = graph_calling(RecordingModel(), mcp_tool(text("pod-a Running")))
    state = await graph.ainvoke({"heard": True, "answer": "", "tool": ""})
    assert state == {"heard": False, "answer": "1 messages", "tool": "pod-a Running"}


async def test_a_callback_handler_still_sees_every_model_and_tool_call():
    recorder = Recorder()
    graph = graph_calling(RecordingModel(), mcp_tool(text("pod-a Running")))
    config = {"callbacks": [recorder]}
    state = await graph.ainvoke({"heard": False, "answer": "", "tool": ""}, config)
    assert state["heard"] is True
    assert recorder.events == ["model", "tool"]


async def test_studios_event_stream_still_sees_every_model_and_tool_call():
    graph = graph_calling(RecordingModel(), mcp_tool(text("pod-a Running")))
    seen = [
        event["event"]
        async for event in graph.astream_events(
            {"heard": False, "answer": "", "tool": ""}, version="v2"
        )
    ]
    assert "on_chat_model_start" in seen
    assert "on_tool_start" in seen


async def test_langsmith_tracing_counts_as_listening():
    assert listened() is False
    with langsmith.tracing_context(enabled=True):
        assert listened() is True
