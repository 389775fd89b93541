"""Which model failures are retried."""

from __future__ import annotations

import httpx
import pytest
from langchain_core.exceptions import ModelRateLimitError, ModelTimeoutError

from graph.retry import is_transient


class StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        ConnectionResetError(),
        httpx.ConnectError("refused"),
        StatusError(429),
        StatusError(503),
        StatusError(500),
        ModelRateLimitError("slow down"),
        ModelTimeoutError("late"),
    ],
)
def test_transient_failures_are_retried(exc: BaseException):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        StatusError(400),
        StatusError(401),
        StatusError(404),
        KeyError("x"),
    ],
)
def test_permanent_failures_are_not(exc: BaseException):
    assert not is_transient(exc)
