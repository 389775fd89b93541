"""Submissions that share an idempotency key run one at a time; a key is forgotten once
nobody holds or waits for it (a long-running service must not keep every key it saw)."""

from __future__ import annotations

import asyncio

from server.key_locks import KeyedLocks


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    overlap: list[tuple[str, ...]] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            inside.append(name)
            overlap.append(tuple(inside))
            await asyncio.sleep(0.01)
            inside.remove(name)

    await asyncio.gather(hold("k", "a"), hold("k", "b"), hold("other", "c"))
    same_key_together = [names for names in overlap if {"a", "b"} <= set(names)]
    assert same_key_together == []
    assert any({"a", "c"} <= set(names) or {"b", "c"} <= set(names) for names in overlap)
    assert len(locks) == 0


async def test_a_key_is_released_when_its_holder_fails() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("k"):
            raise RuntimeError("submission failed")
    except RuntimeError:
        pass
    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("k"):  # not left locked
        pass
