"""Logs: JSON lines off a terminal, text on one, and the session and agent of the running
investigation on every line logged while it runs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from graph.alert import Alert
from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.scripted_model import ModelRequest, ScriptedChatModel, structured
from graph.settings import Settings
from server.logging_setup import UVICORN_LOGGERS, bind_agent, configure_logging, log_context
from server.runtime import open_runtime
from tests.conftest import ops_app_config

log = logging.getLogger("tests.logging")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    loggers = {n: logging.getLogger(n) for n in UVICORN_LOGGERS}
    saved_uvicorn = {n: (lg.handlers[:], lg.propagate, lg.level) for n, lg in loggers.items()}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (handlers, propagate, level) in saved_uvicorn.items():
        loggers[name].handlers[:], loggers[name].propagate = handlers, propagate
        loggers[name].setLevel(level)


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, history_enabled=False, **overrides)  # type: ignore[call-arg]


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def conclude_at_once(request: ModelRequest) -> AIMessage:
    log.info("model asked for %s", request.structured_output or "tools")
    if request.structured_output == "RootCauseAnalysis":
        return structured(
            "RootCauseAnalysis",
            summary="fine",
            root_cause="none",
            evidence=[],
            remediation=[],
            confidence="low",
        )
    return AIMessage(content="nothing to check")


async def test_json_lines_carry_session_and_agent_of_the_investigation():
    stream = io.StringIO()
    configure_logging(settings(log_format="json", log_level="INFO"), stream=stream)
    model = ScriptedChatModel(responder=conclude_at_once)
    async with open_runtime(
        settings(),
        registry=AgentRegistry(ops_app_config()),
        chat_model=(ModelChoice("scripted", "test"), model),
        recover=False,
    ) as runtime:
        log.info("before")
        state, _ = await runtime.investigations.submit(
            Alert.model_validate({"alert_type": "NamespaceTerminating", "message": "stuck"})
        )
        assert (await runtime.investigations.wait(state.session_id)).status == "completed"
        log.info("after")

    entries = lines(stream)  # every line is one JSON object
    model_lines = [e for e in entries if e["message"].startswith("model asked")]
    assert [e["message"] for e in model_lines] == [
        "model asked for tools",
        "model asked for RootCauseAnalysis",
    ]
    for entry in model_lines:
        assert entry["session_id"] == state.session_id
        assert entry["agent"] == "kubernetes"
        assert entry["level"] == "INFO"
        assert entry["logger"] == "tests.logging"
        assert entry["ts"].endswith("+00:00")
    outside = [e for e in entries if e["message"] in ("before", "after")]
    assert [(e["session_id"], e["agent"]) for e in outside] == [(None, None), (None, None)]


async def test_agent_bound_later_shows_in_tasks_started_before():
    stream = io.StringIO()
    configure_logging(settings(log_format="auto"), stream=stream)  # not a TTY: JSON
    bound = asyncio.Event()

    async def child() -> None:
        log.warning("no agent yet")
        await bound.wait()
        log.warning("agent known", extra={"tool": "list_pods"})

    with log_context("s-1"):
        task = asyncio.create_task(child())
        await asyncio.sleep(0)
        bind_agent("kubernetes")
        bound.set()
        await task
    first, second = lines(stream)
    assert (first["session_id"], first["agent"]) == ("s-1", None)
    assert (second["session_id"], second["agent"], second["tool"]) == (
        "s-1",
        "kubernetes",
        "list_pods",
    )


def test_text_on_a_terminal_and_uvicorn_through_the_same_handler():
    stream = Terminal()
    configure_logging(settings(log_level="DEBUG"), stream=stream)  # auto on a TTY: text
    with log_context("s-2", agent="kubernetes"):
        log.debug("checking pods")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/health", "1.1", 200
    )
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" DEBUG   tests.logging [s-2 kubernetes] checking pods")
    assert second.endswith(' INFO    uvicorn.access 127.0.0.1:5000 - "GET /health HTTP/1.1" 200')
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


def test_uvicorn_access_lines_as_json_and_bad_level_refused():
    stream = io.StringIO()
    configure_logging(settings(log_format="json"), stream=stream)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/alerts", "1.1", 202
    )
    (entry,) = lines(stream)
    assert entry["message"] == '127.0.0.1:5000 - "POST /alerts HTTP/1.1" 202'
    assert entry["http"] == {
        "client": "127.0.0.1:5000",
        "method": "POST",
        "path": "/alerts",
        "version": "1.1",
        "status": 202,
    }
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        configure_logging(settings(log_level="LOUD"), stream=stream)
