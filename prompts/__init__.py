"""Prompt templates (Jinja2 files shipped as package data) and the one function that
renders them. Undefined variables are errors, never silently empty text.

The templates read the keys of the state's records with subscripts (`call["ref"]`), not
dots: Jinja tries a dot as an attribute first and, on a dict, raises and catches an error
for every key read, a fifth of a prompt's rendering time."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def _tojson_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prompts", ""),
        undefined=StrictUndefined,
        auto_reload=False,  # templates are package data: no stat() of the file per render
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["compact_json"] = _tojson_compact
    return env


def render(template: str, /, **variables: Any) -> str:
    """Render `prompts/<template>.jinja2` with `variables`; raises on a missing variable."""
    return _environment().get_template(f"{template}.jinja2").render(**variables).strip()


__all__ = ["render"]
