"""Models shaped for a call — tools bound, or a structured-output schema — built once and
reused by every session of the process.

Binding is not free: LangChain converts each tool (and each schema) to the provider's
format on every `bind_tools` / `with_structured_output`, about a millisecond per call, and
it ran on every model call. The shaped runnables are immutable, so one per (model, tool
set) and (model, schema) serves all sessions. A `FallbackChatModel` is per session (its
switch is sticky per session): its `ModelChain` is rebuilt per call, from the cached
bindings of the models it holds.

Structured output is called in two steps, `StructuredOutput`: LangChain's
`include_raw=True` pipeline (a parallel map, an assign, a fallback, three lambdas) costs
about 4 ms of CPU per call in LangChain's plumbing alone, more than the model call."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSequence

from graph.direct_calls import ainvoke_model, parse_message
from graph.fallback import FallbackChatModel, ModelChain


class ModelBindings:
    """A bounded cache of shaped models (least recently used out first)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        # key → (shaped runnable, the objects whose ids make the key: kept alive so an id
        # cannot be reused by another object while the entry exists)
        self._entries: OrderedDict[tuple[Any, ...], tuple[Runnable[Any, Any], Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def tools(self, model: BaseChatModel, tools: Sequence[Any]) -> Runnable[Any, Any]:
        """`model.bind_tools(tools)`, built once per model and tool set."""
        if isinstance(model, FallbackChatModel):
            return ModelChain(model, [(label, self.tools(m, tools)) for label, m in model.models])
        held = (model, tuple(tools))
        key = ("tools", id(model), *(id(t) for t in tools))
        return self._get(key, held, lambda: model.bind_tools(list(tools)))

    def structured(self, model: BaseChatModel, schema: type[Any]) -> Runnable[Any, Any]:
        """`model.with_structured_output(schema, include_raw=True)`, built once per model
        and schema: it returns {"raw", "parsed", "parsing_error"}."""
        if isinstance(model, FallbackChatModel):
            return ModelChain(
                model, [(label, self.structured(m, schema)) for label, m in model.models]
            )
        key = ("structured", id(model), id(schema))
        return self._get(key, (model, schema), lambda: StructuredOutput.build(model, schema))

    def _get(
        self, key: tuple[Any, ...], held: Any, build: Callable[[], Runnable[Any, Any]]
    ) -> Runnable[Any, Any]:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry[0]
        shaped = build()
        self._entries[key] = (shaped, held)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        return shaped


class StructuredOutput(Runnable[Any, dict[str, Any]]):
    """`model.with_structured_output(schema, include_raw=True)` as two calls: the shaped
    model, then its parser. Every provider's `with_structured_output(schema)` is
    `shaped model | parser` (its own format: tools, JSON schema, JSON mode); this runs the
    same two parts and returns what `include_raw=True` returns: {"raw": the AIMessage,
    "parsed": the parsed object or None, "parsing_error": the parser's exception or
    None}. A model error is raised, as there."""

    def __init__(self, model: Runnable[Any, Any], parser: Runnable[Any, Any]) -> None:
        self.model, self.parser = model, parser

    @staticmethod
    def build(model: BaseChatModel, schema: type[Any]) -> Runnable[Any, Any]:
        shaped = model.with_structured_output(schema)
        if isinstance(shaped, RunnableSequence):
            first, *rest = shaped.steps
            parser = rest[0] if len(rest) == 1 else RunnableSequence(*rest)
            return StructuredOutput(first, parser)
        # not `model | parser`: LangChain's own include_raw pipeline
        return model.with_structured_output(schema, include_raw=True)

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        raw = self.model.invoke(input, config, **kwargs)
        try:
            return _answer(raw, parse_message(self.parser, raw, config))
        except Exception as exc:
            return _answer(raw, None, exc)

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        raw = await ainvoke_model(self.model, input, config, **kwargs)
        try:  # parsers are plain CPU work: their async form only adds a thread hop
            return _answer(raw, parse_message(self.parser, raw, config))
        except Exception as exc:
            return _answer(raw, None, exc)


def _answer(raw: AIMessage, parsed: Any, error: Exception | None = None) -> dict[str, Any]:
    return {"raw": raw, "parsed": parsed, "parsing_error": error}
