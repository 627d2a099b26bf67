"""One-off SQL against a test database from synchronous test code (a fresh connection each time)."""

from __future__ import annotations

from typing import Any

import anyio
import asyncpg

__all__ = ("fetch", "scalar", "scalar_or")


def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return anyio.run(run)


def scalar(dsn: str, sql: str, *args: object) -> Any:
    """The first column of the first row (``None`` when there is no row)."""
    rows = fetch(dsn, sql, *args)
    return rows[0][0] if rows else None


def scalar_or(default: int, dsn: str, sql: str, *args: object) -> int:
    """``scalar`` as an int, or ``default`` while the server cannot answer (polling through outages)."""
    try:
        return int(scalar(dsn, sql, *args))
    except (OSError, asyncpg.PostgresError):
        return default
