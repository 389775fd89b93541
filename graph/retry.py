"""Which failures are worth retrying: provider rate limits, timeouts, connection errors
and 5xx answers. (LangGraph's default does not retry ValueError/OSError and friends.)

Two layers retry a model call: the provider's client (LLM_MAX_RETRIES; it honours
Retry-After itself), then the node (`model_retry_policy`), which honours it too."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from langchain_core.exceptions import ModelError
from langgraph.types import RetryPolicy

_TRANSIENT_NAMES = frozenset(
    {
        "RateLimitError",
        "APITimeoutError",
        "APIConnectionError",
        "InternalServerError",
        "ServiceUnavailableError",
        "OverloadedError",
        "ResourceExhausted",
        "DeadlineExceeded",
        "ServiceUnavailable",
    }
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ConnectionError | httpx.TransportError):
        return True
    if isinstance(exc, ModelError):  # langchain's provider-neutral errors say so themselves
        return exc.is_retryable
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and (status in (408, 429) or status >= 500)


RETRY_AFTER_STEPS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""A provider's Retry-After is rounded up to one of these waits (seconds) by the node retry;
beyond the last one it is not honoured (as the OpenAI and Anthropic clients do)."""


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait before retrying (`retry-after-ms`, `Retry-After`
    in seconds or as an HTTP date), when its error carries the HTTP response."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None or not hasattr(headers, "get"):
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _asks_to_wait(low: float, high: float) -> Callable[[BaseException], bool]:
    def matches(exc: BaseException) -> bool:
        wait = retry_after(exc) if is_transient(exc) else None
        return wait is not None and low < wait <= high

    return matches


def model_retry_policy() -> list[RetryPolicy]:
    """Retry model-calling nodes on transient provider errors (3 attempts): exponential
    backoff with jitter (1 s, then 2 s, plus up to 1 s), or, when the provider said how long
    to wait (Retry-After), at least that long: LangGraph uses the first policy whose
    `retry_on` matches, so there is one per step of RETRY_AFTER_STEPS."""
    policies = []
    low = -1.0
    for step in RETRY_AFTER_STEPS:
        policies.append(
            RetryPolicy(
                initial_interval=step,
                backoff_factor=1.0,
                max_interval=step,
                max_attempts=3,
                jitter=True,
                retry_on=_asks_to_wait(low, step),
            )
        )
        low = step
    policies.append(
        RetryPolicy(
            initial_interval=1.0,
            backoff_factor=2.0,
            max_interval=30.0,
            max_attempts=3,
            jitter=True,
            retry_on=is_transient,
        )
    )
    return policies
