"""Model and tool calls without LangChain's run machinery when nobody listens to it.

LangChain wraps every model and tool call in a run: a callback manager configured from
the inherited config, start and end events sent to every handler, run ids, merged configs
and, for tools, signature and type-hint inspection of the tool's function on every call.
That machinery is what carries LangSmith tracing, LangGraph's `messages` stream mode and
`astream_events`, all of which attach a callback handler to the run. Without one, nobody
receives its events, and it costs more CPU per investigation step than LangGraph's own
step does (benchmark P1).

`listened()` says whether anything listens: a handler on the current run (LangGraph hands
the run's handlers down to its nodes) or LangSmith tracing switched on. When nothing does:

- `ainvoke_model` calls the chat model's own generation, `_agenerate_with_cache` (the
  model's cache, rate limiter and streaming choice still apply), with the arguments a
  binding (`bind_tools`, structured output) holds;
- `parse_message` hands a model's answer to an output parser's `parse_result`;
- `ainvoke_tool` calls a tool shaped as langchain-mcp-adapters shapes MCP tools (a
  JSON-schema `args_schema`, a coroutine answering `(content, artifact)`) directly, and
  turns its `ToolException` into an error `ToolMessage` through the tool's
  `handle_tool_error`, as `BaseTool` does.

Otherwise, or for anything else, both are plain `ainvoke`. Either way the caller gets the
same message (`tests/test_direct_calls.py` compares them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.messages.tool import ToolOutputMixin
from langchain_core.output_parsers import BaseGenerationOutputParser, BaseOutputParser
from langchain_core.outputs import ChatGeneration
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langsmith.utils import tracing_is_enabled

# Keywords that BaseChatModel.agenerate takes for tracing metadata and never passes on to
# the provider.
_TRACING_ONLY = ("ls_structured_output_format", "structured_output_format")


def listened() -> bool:
    """Does a callback handler (or LangSmith tracing) listen to the current run?"""
    if tracing_is_enabled():
        return True
    config = var_child_runnable_config.get() or {}
    callbacks = config.get("callbacks")
    if callbacks is None:
        return False
    if isinstance(callbacks, Sequence):
        return len(callbacks) > 0
    return bool(getattr(callbacks, "handlers", True))


def _chat_model(runnable: Runnable[Any, Any]) -> tuple[BaseChatModel, dict[str, Any]] | None:
    """The chat model behind `runnable` and the arguments to call it with, when it is a
    chat model or a plain binding of one (no config of its own, which could add
    callbacks), and the model has no listeners of its own (callbacks given to the model,
    `verbose`); None for anything else."""
    model, kwargs = runnable, {}
    if isinstance(runnable, RunnableBinding):
        if runnable.config or runnable.config_factories:
            return None
        model, kwargs = runnable.bound, dict(runnable.kwargs)
    if not isinstance(model, BaseChatModel) or model.callbacks or model.verbose:
        return None
    return model, kwargs


async def ainvoke_model(
    runnable: Runnable[Any, Any], messages: Any, config: RunnableConfig | None = None, **kw: Any
) -> Any:
    """`await runnable.ainvoke(messages, config, **kw)`, straight to the provider when it
    is a plain call (a list of messages, no config or arguments of its own) and nothing
    listens."""
    plain = config is None and not kw and isinstance(messages, list)
    found = _chat_model(runnable) if plain else None
    # the generation behind ainvoke; should a LangChain release rename it, plain ainvoke
    generate = getattr(found[0], "_agenerate_with_cache", None) if found else None
    if found is None or generate is None or listened():
        return await runnable.ainvoke(messages, config, **kw)
    kwargs = found[1]
    for key in _TRACING_ONLY:
        kwargs.pop(key, None)
    stop = kwargs.pop("stop", None)
    result = await generate(messages, stop=stop, **kwargs)
    message = result.generations[0].message
    if not isinstance(message, AIMessage):  # as BaseChatModel.ainvoke would return it
        message = AIMessage(**message.model_dump(exclude={"type"}))
    return message


def parse_message(
    parser: Runnable[Any, Any], message: AIMessage, config: RunnableConfig | None = None
) -> Any:
    """`parser.invoke(message, config)`, straight to its `parse_result` when there is no
    config of the call's own and nothing listens."""
    if (
        isinstance(parser, BaseOutputParser | BaseGenerationOutputParser)
        and config is None
        and not listened()
    ):
        return parser.parse_result([ChatGeneration(message=message)])
    return parser.invoke(message, config)


def _direct(tool: BaseTool) -> StructuredTool | None:
    """`tool` when it has the MCP adapters' shape (nothing for LangChain to validate or
    inject) and no listeners of its own (callbacks, `verbose`), else None."""
    if (
        isinstance(tool, StructuredTool)
        and tool.coroutine is not None
        and isinstance(tool.args_schema, dict)
        and tool.response_format == "content_and_artifact"
        and not tool.callbacks
        and not tool.verbose
    ):
        return tool
    return None


def _handled(tool: BaseTool, error: ToolException) -> Any:
    """What `handle_tool_error` makes of `error` (re-raised when the tool does not
    handle its errors), as BaseTool does."""
    flag = tool.handle_tool_error
    if not flag:
        raise error
    if isinstance(flag, bool):
        return error.args[0] if error.args else "Tool execution error"
    if isinstance(flag, str):
        return flag
    return flag(error)


async def ainvoke_tool(tool: BaseTool, call: dict[str, Any]) -> Any:
    """Run a tool call (`{"name", "args", "id"}`) as `tool.ainvoke` runs a ToolCall: a
    ToolMessage back; the tool's function called directly when nothing listens."""
    direct = _direct(tool)
    if direct is None or listened():
        return await tool.ainvoke({"type": "tool_call", **call})
    assert direct.coroutine is not None
    status = "success"
    artifact = None
    try:
        answer = await direct.coroutine(**call["args"])
    except ToolException as exc:
        content, status = _handled(direct, exc), "error"
    else:
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise ValueError(
                f"{tool.name} answered {type(answer).__name__}, not (content, artifact)"
            )
        content, artifact = answer
        if isinstance(content, ToolOutputMixin):  # a ToolMessage or Command, as it is
            return content
    if not isinstance(content, str | list):
        try:
            content = json.dumps(content, ensure_ascii=False)
        except (TypeError, ValueError):
            content = str(content)
    return ToolMessage(
        content=content, artifact=artifact, tool_call_id=call["id"], name=tool.name, status=status
    )
