"""A subgraph's checkpoints are stored after the root checkpoint they run under.

LangGraph saves a graph's checkpoints one after another, in the background, while the
next steps run; a subgraph saves its own, separately. When saving lags (many
investigations at once), a subgraph's checkpoint, with the results of tools it called,
could be stored before the root checkpoint whose task started that subgraph. Killed
then, the service would resume from an older root checkpoint, start the agent subgraph as
a new task, and run those tools again. `RootOrder` makes a subgraph's write wait until its
root checkpoint (`checkpoint_map[""]` in the write's config) is stored."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from graph.write_batches import BatchWriter, Statement, Transaction, outcome_future

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(thread_id, root checkpoint_id)."""


class RootOrder:
    """Which root checkpoints are stored, and the subgraph writes waiting for one."""

    def __init__(
        self,
        stored: Callable[[str, str], Awaitable[bool]],
        *,
        remember: int = 4096,
        patience: float = 60.0,
    ) -> None:
        """`stored(thread_id, checkpoint_id)` looks a root checkpoint up in the database
        (one stored by an earlier process); `patience`: seconds a write waits at most."""
        self._lookup, self.remember, self.patience = stored, remember, patience
        self._stored: OrderedDict[Key, None] = OrderedDict()
        self._waiting: dict[Key, asyncio.Future[None]] = {}

    async def wait(self, configurable: dict[str, Any]) -> None:
        """Return once the root checkpoint of a subgraph's write is stored (at once for a
        root write, or for a root checkpoint stored already). The first write of a root
        not seen yet looks it up in the database; the writes that come meanwhile wait for
        that lookup instead of making their own."""
        root = (configurable.get("checkpoint_map") or {}).get("")
        if not configurable.get("checkpoint_ns") or root is None:
            return
        key = (str(configurable["thread_id"]), str(root))
        if key in self._stored:
            return
        waiter = self._waiting.get(key)
        if waiter is None:
            waiter = self._waiting[key] = outcome_future()
            try:
                found = await self._lookup(*key)
            except Exception as exc:  # the writes waiting meanwhile fail with it
                if self._waiting.get(key) is waiter:
                    del self._waiting[key]
                if not waiter.done():
                    waiter.set_exception(exc)
                raise
            if found:
                self.put(*key, stored=True)
                return
        if key in self._stored:  # stored while it was looked up
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.patience)
        except TimeoutError:
            log.warning(
                "thread %s: root checkpoint %s was not stored within %g s; writing its "
                "subgraph's checkpoint anyway",
                *key,
                self.patience,
            )

    def put(self, thread_id: str, checkpoint_id: str, *, stored: bool) -> None:
        """A root checkpoint's write ended (`stored`: committed): its waiters go on."""
        key = (thread_id, checkpoint_id)
        if stored:
            self._remember(key)
        waiter = self._waiting.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _remember(self, key: Key) -> None:
        self._stored[key] = None
        self._stored.move_to_end(key)
        while len(self._stored) > self.remember:
            self._stored.popitem(last=False)


class CheckpointWriter:
    """A saver's writes, batched (`BatchWriter` over `transaction`) and ordered
    (`RootOrder` over `root_stored`): its `aput` hands `checkpoint` the statements of a
    checkpoint, its `aput_writes` hands `writes` those of a task's writes."""

    def __init__(
        self, transaction: Transaction, root_stored: Callable[[str, str], Awaitable[bool]]
    ) -> None:
        self.batches = BatchWriter(transaction)
        self.order = RootOrder(root_stored)

    async def checkpoint(
        self, configurable: dict[str, Any], checkpoint_id: str, statements: list[Statement]
    ) -> None:
        """Store a checkpoint once its root is stored; a root checkpoint, once stored (or
        failed), lets its subgraph's writes go on."""
        await self.order.wait(configurable)
        stored = False
        try:
            await self.batches.write(statements)
            stored = True
        finally:
            if not configurable["checkpoint_ns"]:
                self.order.put(str(configurable["thread_id"]), checkpoint_id, stored=stored)

    async def writes(self, configurable: dict[str, Any], statements: list[Statement]) -> None:
        await self.order.wait(configurable)
        await self.batches.write(statements)

    async def aclose(self) -> None:
        """Commit the writes still queued."""
        await self.batches.aclose()
