"""Kubernetes label and field selectors (``labelSelector=`` / ``fieldSelector=``).

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
``k notin (a,b)``, ``k>n`` and ``k<n``. Field selectors support ``path=v``, ``path==v``
and ``path!=v`` where ``path`` is any dotted path into the object (``metadata.name``,
``status.phase``, ``spec.nodeName``, ``involvedObject.kind``, ...); a missing field
compares as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SelectorError", "field_selector", "label_selector", "lookup_path"]

Predicate = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """The selector cannot be parsed."""


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^)]*)\)$")
_OP_RE = re.compile(r"^([^\s!=<>(),]+)\s*(==|!=|=|>|<)\s*([^\s!=<>(),]*)$")
_KEY_RE = re.compile(r"^(!?)\s*([^\s!=<>(),]+)$")


def _label_requirement(text: str) -> Predicate:
    if match := _SET_RE.match(text):
        key, op, raw = match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _OP_RE.match(text):
        key, op, value = match.groups()
        if op in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if op == "!=":
            return lambda labels: labels.get(key) != value
        try:
            number = int(value)
        except ValueError as exc:
            raise SelectorError(
                f"invalid label selector {text!r}: {value!r} is no integer"
            ) from exc

        def compare(labels: Mapping[str, Any]) -> bool:
            try:
                actual = int(labels[key])
            except (KeyError, TypeError, ValueError):
                return False
            return actual > number if op == ">" else actual < number

        return compare
    if match := _KEY_RE.match(text):
        negate, key = match.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {text!r}")


def label_selector(text: str | None) -> Predicate:
    """A predicate on whole objects for a label selector string (empty → match all)."""
    requirements = [_label_requirement(part) for part in _split_top_level(text or "")]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def lookup_path(obj: Mapping[str, Any], path: str) -> str:
    """The value at dotted ``path`` rendered as a selector compares it (missing → "")."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _split_unescaped(text: str, separator: str) -> list[str]:
    return [p for p in re.split(rf"(?<!\\){re.escape(separator)}", text) if p.strip()]


def field_selector(text: str | None) -> Predicate:
    """A predicate on whole objects for a field selector string (empty → match all)."""
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_unescaped(text or "", ","):
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(==|!=|=)(.*)$", part)
        if not match:
            raise SelectorError(f"invalid field selector requirement: {part!r}")
        path, op, value = match.groups()
        requirements.append((path, op != "!=", _unescape(value.strip())))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(
            (lookup_path(obj, path) == value) is equal for path, equal, value in requirements
        )

    return matches
