"""A scripted tool-calling chat model: the tests script whole conversations with it and the
demo runs on it when no real model is configured.

Unlike langchain-core's fakes it supports `bind_tools` (so `with_structured_output` works
through tool calling) and streams tool calls as proper `tool_call_chunks`, which matters
because LangGraph streams the model whenever a run streams `messages`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

_ids = itertools.count(1)


@dataclass
class ModelRequest:
    """One call the model received: the messages and the tools bound for it."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]

    @property
    def structured_output(self) -> str | None:
        """The schema name when this call is `with_structured_output(...)`, else None."""
        if self.tool_choice == "any" and len(self.tools) == 1:
            return self.tool_names[0]
        return None

    @cached_property
    def text(self) -> str:
        """All message text of the prompt, joined (for assertions and token estimates;
        computed once: a prompt's text is tens of kilobytes)."""
        return "\n".join(m.content if isinstance(m.content, str) else m.text for m in self.messages)


Responder = Callable[[ModelRequest], AIMessage]


def tool_call(tool: str, /, **args: Any) -> dict[str, Any]:
    """A tool call dict for scripting (a fresh id each time)."""
    return {"name": tool, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}


def calls(*tool_calls: dict[str, Any], content: str = "") -> AIMessage:
    """A response that requests these tool calls."""
    return AIMessage(content=content, tool_calls=list(tool_calls))


def structured(schema: str, /, **values: Any) -> AIMessage:
    """A response for `with_structured_output(schema)`."""
    return AIMessage(content="", tool_calls=[tool_call(schema, **values)])


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedChatModel(BaseChatModel):
    """Answers from a script: a list of responses used in order, or a responder function."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=list)
    """Responses used in order: AIMessages, or Responder functions called with the request."""
    responder: Responder | None = None
    latency: float = 0.0
    model_name: str = "scripted"
    record: bool = True
    """Keep every request in `requests` (tests); off for long-running use."""
    _requests: list[ModelRequest] = PrivateAttr(default_factory=list)
    _position: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def requests(self) -> list[ModelRequest]:
        """Every call received, in order (shared by all bound copies)."""
        return self._requests

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _respond(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        request = ModelRequest(list(messages), kwargs.get("tools") or [], kwargs.get("tool_choice"))
        if self.record:
            self._requests.append(request)
        if self._position < len(self.script):
            step = self.script[self._position]
            self._position += 1
            response = step(request) if callable(step) else step
        elif self.responder is not None:
            response = self.responder(request)
        else:
            raise RuntimeError(f"scripted model ran out of responses after {self._position} calls")
        prompt_tokens = _estimate_tokens(request.text)
        output_tokens = _estimate_tokens(response.text + json.dumps(response.tool_calls))
        usage = UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
            total_tokens=prompt_tokens + output_tokens,
        )
        return AIMessage(
            content=response.content,
            tool_calls=[
                {**c, "id": c.get("id") or f"call_{next(_ids)}"} for c in response.tool_calls
            ],
            usage_metadata=usage,
            response_metadata={"model_name": self.model_name},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages, **kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._generate(messages, stop, **kwargs)

    def _chunks(self, message: AIMessage) -> Iterator[AIMessageChunk]:
        text = message.text
        for start in range(0, len(text), 24):
            yield AIMessageChunk(content=text[start : start + 24])
        for index, call in enumerate(message.tool_calls):
            args = json.dumps(call["args"])
            middle = len(args) // 2
            yield AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": args[:middle],
                        "id": call["id"],
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
            yield AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": None,
                        "args": args[middle:],
                        "id": None,
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
        yield AIMessageChunk(
            content="",
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._respond(messages, **kwargs)):
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                run_manager.on_llm_new_token(
                    chunk.content, chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.latency:
            await asyncio.sleep(self.latency)
        for chunk in self._chunks(self._respond(messages, **kwargs)):
            generation = ChatGenerationChunk(message=chunk)
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                await run_manager.on_llm_new_token(chunk.content, chunk=generation)
            yield generation
