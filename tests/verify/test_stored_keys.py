"""The key snapshot: PostgreSQL's hash of a stored key and ours of a key on disk must agree, or every
line would be a doubt (slow) — and a key the snapshot lacks must never be reported as held. It holds
one host's keys only, so a scrub costs that host's lines, not the fleet's."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.verify.stored import StoredKeys

pytestmark = pytest.mark.anyio

KEYS = ["1f0c4f5e-6a7b-4c2d-9e8f-0a1b2c3d4e5f", "sha256:" + "ab" * 32, "ü-ключ-键-🔑", "x"]


async def _store(db: asyncpg.Connection, keys: list[str], host: str = "h") -> None:
    await db.executemany(
        """INSERT INTO mnemo.entries (key, entry_type, data, source_path, source_offset, source_host)
           VALUES ($1, 'user', '{}'::jsonb, '/t.jsonl', $2, $3)""",
        [(key, n, host) for n, key in enumerate(keys)],
    )


async def test_stored_keys__holds_every_stored_key_and_no_other(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    await _store(db, KEYS)
    snapshot = await StoredKeys.load(db, "h")
    assert len(snapshot) == len(KEYS)
    assert snapshot.contains([*KEYS, "absent", "ü-ключ", ""]).tolist() == [True] * len(KEYS) + [False] * 3
    reopened = StoredKeys.open(snapshot.save(tmp_path))
    assert reopened.contains(KEYS).all() and not reopened.contains(["absent"]).any()


async def test_stored_keys__an_empty_archive_holds_nothing(db: asyncpg.Connection) -> None:
    snapshot = await StoredKeys.load(db, "h")
    assert len(snapshot) == 0
    assert snapshot.contains(["a", "b"]).tolist() == [False, False]
    assert snapshot.contains([]).tolist() == []


async def test_stored_keys__a_server_that_refuses_md5_gives_the_same_snapshot(
    db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await _store(db, KEYS)
    await _store(db, ["other-1"], host="other")
    by_server = await StoredKeys.load(db, "h")
    # md5() as a FIPS-mode server answers it, found first on this connection's search path
    await db.execute(
        """CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = 'md5 disabled for FIPS'; END $$"""
    )
    await db.execute("SET search_path = public, pg_catalog")
    refused = await StoredKeys.load(db, "h")
    assert "refused md5()" in caplog.text
    assert len(refused) == len(by_server)
    assert refused.contains([*KEYS, "absent"]).tolist() == by_server.contains([*KEYS, "absent"]).tolist()
    assert refused.contains(KEYS).all() and not refused.contains(["other-1"]).any()


async def test_stored_keys__holds_only_the_hosts_own_keys(db: asyncpg.Connection) -> None:
    await _store(db, KEYS[:2])
    await _store(db, ["other-1", "other-2"], host="other")
    mine = await StoredKeys.load(db, "h")
    assert len(mine) == 2
    assert mine.contains([*KEYS[:2], "other-1", "other-2"]).tolist() == [True, True, False, False]
    theirs = await StoredKeys.load(db, "other")
    assert theirs.contains(["other-1", "other-2", KEYS[0]]).tolist() == [True, True, False]
    # Found by an index on (host, key), not by reading every host's rows.
    assert (
        await db.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'mnemo' AND indexname = 'entries_host_key'"
        )
        == "CREATE INDEX entries_host_key ON mnemo.entries USING btree (source_host, key)"
    )
