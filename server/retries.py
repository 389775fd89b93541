"""How long to wait before trying the database again after it refused a write (or a
listening connection), growing while it stays down."""

from __future__ import annotations

WAITS = (0.5, 1.0, 2.0, 5.0)
"""Seconds before the 1st, 2nd, 3rd and every later attempt."""


def wait_after(failures: int) -> float:
    """The wait after `failures` refusals in a row (at least one)."""
    return WAITS[min(max(failures, 1), len(WAITS)) - 1]
