"""Throw-away PostgreSQL databases on the local server, for tests (skipped if unreachable)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "SRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _conninfo(database: str) -> str:
    from psycopg.conninfo import make_conninfo

    url = make_url(PG_ADMIN_URL)
    return make_conninfo(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=database,
    )


def skip_unless_reachable() -> None:
    url = make_url(PG_ADMIN_URL)
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return
    except OSError:
        pytest.skip(
            f"PostgreSQL is not reachable at {host}:{port} "
            "(set SRE_TEST_POSTGRES_URL to an admin URL to run these tests)"
        )


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create `sre_agent_test_<random>`; yield its SQLAlchemy URL; drop it afterwards."""
    skip_unless_reachable()
    import psycopg

    name = f"sre_agent_test_{uuid.uuid4().hex[:12]}"
    admin = _conninfo(make_url(PG_ADMIN_URL).database or "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(PG_ADMIN_URL)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
