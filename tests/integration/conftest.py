"""Fixtures of the integration tests: a working directory per test, and the history
database a service process under test writes (SQLite there, or a fresh PostgreSQL
database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.service_history import database_url
from tests.pg import fresh_database


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history_url(request: pytest.FixtureRequest, workdir: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield database_url(workdir)
        return
    with fresh_database() as url:
        yield url
