"""Versioned, idempotent schema migrations for the ``mnemo`` schema.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, under a transaction-level advisory
lock, so two importers starting together cannot both apply it. An applied file must never be edited:
its checksum is recorded and a mismatch stops the importer rather than guessing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

from ..errors import MigrationError

__all__ = ("Migration", "apply_migrations", "known_migrations")

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x6D6E656D6F  # "mnemo"
_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS mnemo;
CREATE TABLE IF NOT EXISTS mnemo.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def known_migrations() -> list[Migration]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            version, _, name = item.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(version), name, item.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def apply_migrations(
    conn: asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    *,
    target: int | None = None,
) -> list[Migration]:
    """Bring the schema up to date (or up to ``target``, to test a later migration on old data);
    returns the migrations applied by this call."""
    migrations = [m for m in known_migrations() if target is None or m.version <= target]
    applied_now: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_BOOTSTRAP)
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            recorded = await conn.fetchval(
                "SELECT checksum FROM mnemo.schema_migrations WHERE version = $1", migration.version
            )
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version} ({migration.name}) was changed after being applied"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO mnemo.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration)
            logger.info("applied migration %04d_%s", migration.version, migration.name)
    newest = await conn.fetchval("SELECT max(version) FROM mnemo.schema_migrations")
    if newest is not None and newest > migrations[-1].version:
        raise MigrationError(
            f"database schema version {newest} is newer than this mnemo-otel knows ({migrations[-1].version})"
        )
    return applied_now
