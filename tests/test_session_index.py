"""The session index in memory: what a session that leaves memory takes with it."""

from __future__ import annotations

from server.session_index import SessionIndex
from server.sessions import SessionState


def session(session_id: str) -> SessionState:
    return SessionState(session_id=session_id, alert_id=f"alert-{session_id}", alert_type="T")


async def test_a_forgotten_session_takes_its_keys_but_not_a_newer_sessions():
    index = SessionIndex(None)
    try:
        older, newer = session("s1"), session("s2")
        await index.create(older, {}, idempotency_key="k1", fingerprint="fp")
        await index.create(newer, {}, idempotency_key="k2", fingerprint="fp")  # fired again

        index.forget("s1")
        assert await index.for_key("k1") is None
        assert await index.for_key("k2") is newer
        assert await index.for_fingerprint("fp") is newer  # the fingerprint is the newer's now

        index.forget("s2")
        assert await index.for_key("k2") is None
        assert await index.for_fingerprint("fp") is None
        assert len(index) == 0
    finally:
        await index.aclose()
