"""Shared fixtures: one real PostgreSQL for the run, a fresh database per test cloned from a migrated
template, and an environment stripped of MNEMO_*/OTEL_* so the developer's settings never leak in."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.store.migrate import apply_migrations
from mnemo_otel.store.postgres import PostgresSink
from testkit.postgres_server import PostgresServer

_TEMPLATE = "mnemo_template"
_counter = itertools.count()


def pytest_report_header() -> str:
    """The chaos seed, so any run can be replayed exactly (``MNEMO_CHAOS_SEED=<n>``)."""
    from testkit.chaos.scenarios import seed_from_env

    return f"chaos seed: {seed_from_env()} (MNEMO_CHAOS_SEED replays another)"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MNEMO_", "OTEL_", "CLAUDE_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        import anyio

        anyio.run(_make_template, server)
        yield server
    finally:
        server.destroy()


async def _make_template(server: PostgresServer) -> None:
    admin = await asyncpg.connect(server.dsn())
    try:
        await admin.execute(f"CREATE DATABASE {_TEMPLATE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(server.dsn(_TEMPLATE))
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


@pytest.fixture
def new_database(postgres: PostgresServer) -> Iterator[Callable[[], str]]:
    """Fresh, migrated databases on demand (their URLs), dropped after the test."""
    import anyio

    names: list[str] = []

    def create() -> str:
        name = f"test_{os.getpid()}_{next(_counter)}"
        anyio.run(_admin, postgres, f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        names.append(name)
        return postgres.dsn(name)

    yield create
    for name in names:
        anyio.run(_admin, postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A fresh, migrated database for one test."""
    return new_database()


async def _admin(server: PostgresServer, sql: str) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def sink(database_url: str) -> AsyncIterator[PostgresSink]:
    opened = await PostgresSink.open(database_url)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def transcripts(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    root.mkdir()
    return root
