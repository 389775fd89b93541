"""Fallback models (LLM_FALLBACK_MODELS): when a model call fails with a provider error
that outlived the client's own retries (rate limit, timeout, connection, 5xx), the next
model answers the same request, and the rest of the session stays on it.

`FallbackChatModel` stands in for the session's model. The nodes use it like any chat
model: its `bind_tools` and `with_structured_output` return a `ModelChain` holding the
same request shaped by each model (tool and schema formats differ per provider), so each
model gets a request it understands. `ModelChain.ainvoke_tracked` also says which model
answered and which failed, for the call record and the `degraded` event
(nodes/_llm.py); plain `invoke`/`ainvoke` behave the same without the report.

One instance per session (graph/services.py `Services.context`): the switch is sticky for
that session only, so a primary that keeps failing costs its retries once per session."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import ModelError
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, PrivateAttr

from graph.direct_calls import ainvoke_model
from graph.mcp_errors import describe_error
from graph.retry import is_transient

log = logging.getLogger(__name__)


def should_fall_back(exc: BaseException) -> bool:
    """Worth another model: transient provider errors (langchain's retryable classes too,
    e.g. `OpenAITimeoutError`, whose names `is_transient` does not list)."""
    return is_transient(exc) or (isinstance(exc, ModelError) and exc.is_retryable)


@dataclass
class Answer:
    """One call through a `ModelChain`: the result and which model gave it."""

    result: Any
    model: str
    """Label of the model that answered."""
    primary: str
    """Label of the session's configured model."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(label, error) of each model that failed this call before `model` answered."""

    @property
    def fell_back(self) -> bool:
        return self.model != self.primary


class ModelChain(Runnable[LanguageModelInput, Any]):
    """The same request for each model, tried in order from the session's current one."""

    def __init__(self, owner: FallbackChatModel, steps: Sequence[tuple[str, Runnable[Any, Any]]]):
        self.owner = owner
        self.steps = list(steps)

    def _start(self) -> int:
        return min(self.owner.active_index, len(self.steps) - 1)

    def _failed(self, index: int, exc: Exception, failures: list[tuple[str, str]]) -> bool:
        """Record a failure worth falling back from; False means re-raise it."""
        if index + 1 >= len(self.steps) or not should_fall_back(exc):
            return False
        label, error = self.steps[index][0], describe_error(exc)
        log.warning("model %s failed (%s); trying %s", label, error, self.steps[index + 1][0])
        failures.append((label, error))
        return True

    def _answered(self, index: int, result: Any, failures: list[tuple[str, str]]) -> Answer:
        self.owner.active_index = max(self.owner.active_index, index)
        return Answer(result, self.steps[index][0], self.owner.primary, failures)

    def invoke_tracked(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Answer:
        failures: list[tuple[str, str]] = []
        for index in range(self._start(), len(self.steps)):
            try:
                result = self.steps[index][1].invoke(input, config, **kwargs)
            except Exception as exc:
                if self._failed(index, exc, failures):
                    continue
                raise
            return self._answered(index, result, failures)
        raise AssertionError("unreachable: the last model's error is raised")

    async def ainvoke_tracked(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Answer:
        failures: list[tuple[str, str]] = []
        for index in range(self._start(), len(self.steps)):
            try:
                result = await ainvoke_model(self.steps[index][1], input, config, **kwargs)
            except Exception as exc:
                if self._failed(index, exc, failures):
                    continue
                raise
            return self._answered(index, result, failures)
        raise AssertionError("unreachable: the last model's error is raised")

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return self.invoke_tracked(input, config, **kwargs).result

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return (await self.ainvoke_tracked(input, config, **kwargs)).result


class FallbackChatModel(BaseChatModel):
    """A primary chat model and its fallbacks, as one model (labels "provider:model")."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    models: list[tuple[str, BaseChatModel]]
    """(label, model), the primary first."""
    _active: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "fallback"

    @property
    def primary(self) -> str:
        return self.models[0][0]

    @property
    def active_index(self) -> int:
        return self._active

    @active_index.setter
    def active_index(self, index: int) -> None:
        self._active = index

    @property
    def active(self) -> str:
        """Label of the model this session's calls start with."""
        return self.models[self._active][0]

    def chain(self, shape: Callable[[BaseChatModel], Runnable[Any, Any]]) -> ModelChain:
        """`shape` applied to each model (e.g. `lambda m: m.bind_tools(tools)`)."""
        return ModelChain(self, [(label, shape(model)) for label, model in self.models])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ModelChain:
        return self.chain(lambda model: model.bind_tools(tools, **kwargs))

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> ModelChain:
        return self.chain(
            lambda model: model.with_structured_output(schema, include_raw=include_raw, **kwargs)
        )

    def _call_kwargs(self, stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        return {**kwargs, **({"stop": stop} if stop is not None else {})}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chain = self.chain(lambda model: model.bind(**self._call_kwargs(stop, **kwargs)))
        message = chain.invoke(messages)
        return ChatResult(generations=[ChatGeneration(message=_as_ai_message(message))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chain = self.chain(lambda model: model.bind(**self._call_kwargs(stop, **kwargs)))
        message = await chain.ainvoke(messages)
        return ChatResult(generations=[ChatGeneration(message=_as_ai_message(message))])


def _as_ai_message(message: Any) -> AIMessage:
    if isinstance(message, AIMessage):
        return message
    return AIMessage(content=getattr(message, "content", str(message)))


def with_fallbacks(
    label: str, model: BaseChatModel, fallbacks: Sequence[tuple[str, BaseChatModel]]
) -> BaseChatModel:
    """`model` alone when there are no fallbacks (or only itself), else a fresh
    `FallbackChatModel` (one per session: the switch is sticky per instance)."""
    rest = [(name, m) for name, m in fallbacks if name != label]
    if not rest:
        return model
    return FallbackChatModel(models=[(label, model), *rest])
