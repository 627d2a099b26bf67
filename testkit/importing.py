"""Helpers for tests that import into a real database and look at the outcome."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncpg

from mnemo_otel.importer import Importer, ImportSummary
from mnemo_otel.model import Sink
from mnemo_otel.settings import ImportSettings, RetrySettings
from testkit.synthetic import line

FAST_RETRY = RetrySettings(initial_seconds=0.05, max_seconds=0.5)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our, the SDK's or Claude's variables, plus ``extra``:
    what a child importer process gets, so a developer's own settings never leak into a test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "OTEL_", "CLAUDE_"))}
    env.update(extra)
    return env


def importer(sink: Sink, root: Path, **settings: Any) -> Importer:
    return Importer(sink, roots=[root], settings=ImportSettings(**settings), retry=FAST_RETRY, retry_for=30)


async def import_once(sink: Sink, root: Path, **settings: Any) -> ImportSummary:
    return await importer(sink, root, **settings).import_once()


async def refuse_poisoned_lines(db: asyncpg.Connection) -> None:
    """Make PostgreSQL refuse any line with a ``poison`` field, as it refuses data it cannot take
    (SQLSTATE 22023): the importer must isolate and quarantine such a line, never lose the others."""
    await db.execute(
        """
        CREATE FUNCTION mnemo.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.data ? 'poison' THEN RAISE EXCEPTION 'poison' USING ERRCODE = '22023'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON mnemo.entries
            FOR EACH ROW EXECUTE FUNCTION mnemo.refuse_poison();
        """
    )


async def stored_keys(db: asyncpg.Connection) -> set[str]:
    return {row["key"] for row in await db.fetch("SELECT key FROM mnemo.entries")}


async def quarantine(db: asyncpg.Connection) -> list[tuple[str, int, str, bytes]]:
    rows = await db.fetch(
        "SELECT source_path, source_offset, error_kind, raw FROM mnemo.quarantine ORDER BY source_path, source_offset"
    )
    return [(r["source_path"], r["source_offset"], r["error_kind"], bytes(r["raw"])) for r in rows]


async def checkpoint(db: asyncpg.Connection, path: Path) -> int | None:
    value: int | None = await db.fetchval(
        "SELECT committed_offset FROM mnemo.files WHERE path = $1", str(path)
    )
    return value


def entry(uuid: str, session: str = "s1", kind: str = "user", text: str = "hello", **extra: Any) -> bytes:
    message: dict[str, Any]
    if kind == "assistant":
        message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
    else:
        message = {"role": "user", "content": text}
    return line(
        {
            "type": kind,
            "uuid": uuid,
            "sessionId": session,
            "timestamp": "2026-01-01T00:00:00.000Z",
            "message": message,
            **extra,
        }
    )
