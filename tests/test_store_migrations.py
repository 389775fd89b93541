"""Schema upgrades keep data: a database at revision 0001 with rows is brought to head
(0002 adds `sre_sessions.fingerprint`), on SQLite and PostgreSQL; and the fingerprint lookup."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from server.store import Store, migrate
from tests.pg import fresh_database

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sre-agent.db"
        return
    with fresh_database() as url:
        yield url


def _session_columns_and_indexes(conn: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(conn)
    columns = {c["name"] for c in inspector.get_columns("sre_sessions")}
    indexes = {str(i["name"]) for i in inspector.get_indexes("sre_sessions")}
    return columns, indexes


async def test_upgrade_0001_to_head_keeps_rows_with_null_fingerprint(db_url: str) -> None:
    old = Store(db_url)  # engine only: the schema is brought to 0001 by hand
    try:
        await migrate.upgrade(old.engine, "0001")
        async with old.engine.connect() as conn:
            columns, _ = await conn.run_sync(_session_columns_and_indexes)
        assert "fingerprint" not in columns
        await old.create_session(
            session_id="before",
            alert_id="a-before",
            alert_type="KubePodCrashLooping",
            alert_data={"namespace": "billing", "labels": {"pod": "api-1"}},
            status="completed",
            session_metadata={"note": "written by 0001"},
        )
        await old.insert_events({"before": [(1, {"type": "session_started"}), (2, {"type": "x"})]})
    finally:
        await old.close()

    new = await Store.open(db_url)  # migrates to head
    try:
        assert await migrate.recorded_revision(new.engine) == migrate.head_revision() == "0004"
        async with new.engine.connect() as conn:
            columns, indexes = await conn.run_sync(_session_columns_and_indexes)
        assert "fingerprint" in columns and "ix_sre_sessions_fingerprint" in indexes

        kept = await new.get_session("before")
        assert kept is not None
        assert kept.fingerprint is None
        assert kept.status == "completed" and kept.completed_at is not None
        assert kept.alert_data == {"namespace": "billing", "labels": {"pod": "api-1"}}
        assert kept.session_metadata == {"note": "written by 0001"}
        assert [seq for seq, _ in await new.events_after("before")] == [1, 2]

        # New rows carry fingerprints next to the old one.
        await new.create_session(
            session_id="after", alert_id="a-after", alert_type="T", alert_data={}, fingerprint="f1"
        )
        after = await new.latest_session_by_fingerprint("f1")
        assert after is not None and after.session_id == "after"
    finally:
        await new.close()


async def test_downgrade_to_0001_keeps_rows(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await store.create_session(
            session_id="s", alert_id="a", alert_type="T", alert_data={"k": 1}, fingerprint="f"
        )

        def downgrade(conn: Connection) -> None:
            command.downgrade(migrate.alembic_config(conn), "0001")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await migrate.recorded_revision(store.engine) == "0001"
        async with store.engine.connect() as conn:
            columns, indexes = await conn.run_sync(_session_columns_and_indexes)
        assert "fingerprint" not in columns and "ix_sre_sessions_fingerprint" not in indexes
    finally:
        await store.close()

    again = await Store.open(db_url)  # and up again
    try:
        got = await again.get_session("s")
        assert got is not None and got.alert_data == {"k": 1} and got.fingerprint is None
    finally:
        await again.close()


async def test_latest_session_by_fingerprint(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        assert await store.latest_session_by_fingerprint("nope") is None

        async def new(sid: str, fingerprint: str | None, minutes: int, **extra: Any) -> None:
            await store.create_session(
                session_id=sid,
                alert_id=f"alert-{sid}",
                alert_type="KubePodCrashLooping",
                alert_data={},
                fingerprint=fingerprint,
                **extra,
            )
            await store.update_session(sid, started_at=T0 + timedelta(minutes=minutes))

        await new("old", "fp-a", 1, status="completed")
        await new("newest", "fp-a", 3)
        await new("middle", "fp-a", 2, status="failed")
        await new("other", "fp-b", 9)
        await new("none", None, 10)

        latest = await store.latest_session_by_fingerprint("fp-a")
        assert latest is not None and latest.session_id == "newest"
        assert latest.fingerprint == "fp-a"
        other = await store.latest_session_by_fingerprint("fp-b")
        assert other is not None and other.session_id == "other"
        # Fingerprints are not unique: a later investigation of the same alert is a new row.
        assert (await store.stats())["total"] == 5
    finally:
        await store.close()


async def test_a_new_database_and_one_at_head_open_without_loading_alembic(db_url: str) -> None:
    """Alembic (about a tenth of a second to load) is needed only when the schema is behind;
    the revision the code knows as the newest is the one the migration scripts end at."""
    assert migrate.head_revision() == migrate.HEAD
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from server.store import Store, migrate

        async def main():
            for _ in range(2):  # a new database, then the same one at head
                store = await Store.open({db_url!r})
                print(await migrate.recorded_revision(store.engine), "alembic" in sys.modules)
                await store.close()

        asyncio.run(main())
        """
    )
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [migrate.HEAD, "False"] * 2
