"""Which failures are worth retrying: provider rate limits, timeouts, connection errors
and 5xx answers. (LangGraph's default does not retry ValueError/OSError and friends.)"""

from __future__ import annotations

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


def model_retry_policy() -> RetryPolicy:
    """Retry model-calling nodes on transient provider errors, with backoff and jitter."""
    return RetryPolicy(
        initial_interval=1.0,
        backoff_factor=2.0,
        max_interval=30.0,
        max_attempts=3,
        jitter=True,
        retry_on=is_transient,
    )
