from __future__ import annotations

import asyncpg
import pytest

from mnemo_otel.errors import MigrationError
from mnemo_otel.store.migrate import apply_migrations, known_migrations

pytestmark = pytest.mark.anyio


async def test_apply_migrations__twice_is_a_no_op(db: asyncpg.Connection) -> None:
    assert await apply_migrations(db) == []  # the template database is migrated already
    versions = [
        r["version"] for r in await db.fetch("SELECT version FROM mnemo.schema_migrations ORDER BY 1")
    ]
    assert versions == [m.version for m in known_migrations()]


async def test_apply_migrations__on_an_empty_database_creates_the_stable_sql_surface(
    db: asyncpg.Connection,
) -> None:
    await db.execute("DROP SCHEMA mnemo CASCADE")
    applied = await apply_migrations(db)
    assert [m.version for m in applied] == [m.version for m in known_migrations()]
    tables = {
        r["table_name"]
        for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mnemo'"
        )
    }
    assert {"entries", "quarantine", "files", "sessions", "exchanges", "schema_migrations"} <= tables
    key_is_unique = await db.fetchval(
        """SELECT bool_or(i.indisunique) FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = 'mnemo.entries'::regclass AND a.attname = 'key' AND i.indnatts = 1"""
    )
    assert key_is_unique is True


async def test_apply_migrations__refuses_an_applied_migration_that_was_edited(db: asyncpg.Connection) -> None:
    await db.execute("UPDATE mnemo.schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after being applied"):
        await apply_migrations(db)


async def test_apply_migrations__refuses_a_schema_newer_than_this_code(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO mnemo.schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')"
    )
    with pytest.raises(MigrationError, match="newer"):
        await apply_migrations(db)
