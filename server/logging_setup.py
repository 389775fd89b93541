"""The service's logs: one JSON object per line for log collectors, readable text on a
terminal, and the session (and agent) of the investigation on every line emitted while
it runs.

The investigation worker opens `log_context(session_id)`; asyncio tasks copy the context
when they are created, so every task the investigation starts (graph nodes, tool calls)
carries it. The context holds one mutable object, so the agent bound once it is selected
(`bind_agent`) shows in tasks that were started before that too."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from graph.settings import Settings

LOG_FORMATS = ("auto", "json", "text")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "session_id",
    "agent",
    "taskName",
    "where",
    "color_message",  # uvicorn's colored copy of the message
}


@dataclass
class LogContext:
    session_id: str
    agent: str | None = None


_current: ContextVar[LogContext | None] = ContextVar("sre_agent_log_context", default=None)


@contextlib.contextmanager
def log_context(session_id: str, agent: str | None = None) -> Iterator[LogContext]:
    """Tag the log records of this block (and of the tasks it starts) with the session."""
    context = LogContext(session_id, agent)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def bind_agent(agent: str | None) -> None:
    """Name the agent of the current investigation (no-op outside one)."""
    current = _current.get()
    if current is not None and agent:
        current.agent = agent


def current_log_context() -> LogContext | None:
    return _current.get()


class ContextFilter(logging.Filter):
    """Adds `session_id` and `agent` (None outside an investigation) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get()
        if getattr(record, "session_id", None) is None:
            record.session_id = current.session_id if current else None
        if getattr(record, "agent", None) is None:
            record.agent = current.agent if current else None
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, session_id, agent, and any
    `extra=` fields; `exc` holds a traceback, `http` a uvicorn access line's parts."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session_id": getattr(record, "session_id", None),
            "agent": getattr(record, "agent", None),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            entry["http"] = {
                "client": client,
                "method": method,
                "path": path,
                "version": version,
                "status": status,
            }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`12:00:01.234 INFO    server.manager [session-id agent] message`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s%(where)s %(message)s")
        self.datefmt = "%H:%M:%S"

    def format(self, record: logging.LogRecord) -> str:
        session_id, agent = getattr(record, "session_id", None), getattr(record, "agent", None)
        parts = [p for p in (session_id, agent) if p]
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def resolve_format(log_format: str, stream: IO[str]) -> str:
    """`auto`: text on a terminal, JSON otherwise."""
    log_format = log_format.lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return "text" if isatty is not None and isatty() else "json"
    return log_format


def _level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"LOG_LEVEL {name!r} is not a logging level (DEBUG, INFO, WARNING, ...)")
    return level


class _Handler(logging.StreamHandler[IO[str]]):
    """The handler `configure_logging` installs (replaced on the next call)."""


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Route every log record (the app's, the libraries', uvicorn's) through one handler on
    the root logger, at LOG_LEVEL, formatted as LOG_FORMAT. Returns the handler."""
    stream = stream or sys.stderr
    level = _level(settings.log_level)
    handler = _Handler(stream)
    json_lines = resolve_format(settings.log_format, stream) == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):  # ours from before, and logging.basicConfig's
        if isinstance(old, _Handler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:  # uvicorn (run with log_config=None) logs through the root
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(level)
    return handler
