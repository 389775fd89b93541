"""Fenced checkpoint writes: a saver given a `ThreadFence` asks it, in the transaction
that would write a batch, which of the batch's threads must not be written now, and drops
their rows. The service fences the sessions another replica took over
(server/store/fencing.py): a replica that has not noticed yet that it lost a session adds
nothing to that session's history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from graph.write_batches import Statement


class ThreadFence(Protocol):
    def query(self, thread_ids: Sequence[str], placeholder: str) -> tuple[str, tuple[Any, ...]]:
        """SQL (parameters marked with `placeholder`) and its parameters, selecting one
        column, `thread_id`: those of `thread_ids` whose rows must not be written."""
        ...


def thread_ids(statements: Sequence[Statement]) -> list[str]:
    """The threads a batch writes (every checkpoint table's rows start with it)."""
    return sorted({str(row[0]) for statement in statements for row in statement.rows})


def without(statements: Sequence[Statement], fenced: set[str]) -> list[Statement]:
    """`statements` without the rows of the `fenced` threads (and without those left with
    no rows)."""
    if not fenced:
        return list(statements)
    kept = [
        Statement(s.table, s.sql, [row for row in s.rows if str(row[0]) not in fenced])
        for s in statements
    ]
    return [statement for statement in kept if statement.rows]
