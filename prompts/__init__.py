"""Prompt templates (Jinja2 files shipped as package data) and the one function that
renders them. Undefined variables are errors, never silently empty text.

The templates read the keys of the state's records with subscripts (`call["ref"]`), not
dots: Jinja tries a dot as an attribute first and, on a dict, raises and catches an error
for every key read, a fifth of a prompt's rendering time.

The shared parts (`_alert`, `_runbook`, ...) stay files of their own, included by name,
but an include is expanded into the including template's source when it is loaded
(`inline_includes`): a rendered include builds a new context and looks the template up
on every render, a quarter of a prompt's rendering time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, MutableMapping
from functools import lru_cache
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined

_INCLUDE = re.compile(r'(?m)^\{% include "([^"]+)" %\}\n?')
"""A plain include on a line of its own, with the line break after it."""


def inline_includes(source: str, load: Callable[[str], str]) -> str:
    """`source` with each plain `{% include "name" %}` line replaced by `load(name)`
    (itself expanded), rendering as the include would with `trim_blocks` and without
    `keep_trailing_newline`. Both drop a line break: the one ending the included source,
    and the one after the include tag. That one is kept in the text when the included
    source ends with a tag, as `trim_blocks` drops it there."""

    def expand(match: re.Match[str]) -> str:
        included = inline_includes(load(match.group(1)), load)
        if included.endswith("\n"):
            included = included[:-1]
        ends_with_tag = included.endswith(("%}", "#}"))
        return included + "\n" if ends_with_tag and match.group(0).endswith("\n") else included

    return _INCLUDE.sub(expand, source)


class _InliningLoader(BaseLoader):
    """The package's templates, with their includes expanded (`inline_includes`)."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        expanded = inline_includes(source, lambda name: self.inner.get_source(environment, name)[0])
        return expanded, filename, uptodate


class _Environment(Environment):
    """Templates whose globals are a plain dict, a copy of the environment's when the
    template is loaded. Jinja's own are a ChainMap over both, and every render copies
    them into its context: iterating a ChainMap took a seventh of a render."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


def _tojson_compact(value: Any) -> str:
    return _json_encoder().encode(value)


@lru_cache(maxsize=1)
def _json_encoder() -> json.JSONEncoder:
    """One encoder for every value: `json.dumps` with a `default` builds one per call."""
    return json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), default=str)


def environment(*, inline: bool = True) -> Environment:
    """A Jinja environment over the package's templates (`inline`: includes expanded when
    loaded; off, they are rendered as Jinja renders includes)."""
    loader: BaseLoader = PackageLoader("prompts", "")
    env = _Environment(
        loader=_InliningLoader(loader) if inline else loader,
        undefined=StrictUndefined,
        auto_reload=False,  # templates are package data: no stat() of the file per render
        autoescape=False,
        trim_blocks=True,  # `inline_includes` renders as includes with these three
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["compact_json"] = _tojson_compact
    return env


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return environment()


def render(template: str, /, **variables: Any) -> str:
    """Render `prompts/<template>.jinja2` with `variables`; raises on a missing variable."""
    return _environment().get_template(f"{template}.jinja2").render(**variables).strip()


__all__ = ["environment", "inline_includes", "render"]
