"""The error a runbook fetch raises: one line, fit to show the user who sent the alert."""

from __future__ import annotations


class RunbookError(Exception):
    """A runbook could not be fetched; str(e) is a one-line reason fit to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def describe(exc: BaseException) -> str:
    """An exception's message, or its type's name when it has none."""
    return str(exc) or type(exc).__name__
