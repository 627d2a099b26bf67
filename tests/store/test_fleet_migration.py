"""Migration 0003 on a database the schema-2 importer filled: the first importer to start claims the
old rows and continues from the old checkpoints, reading nothing again."""

from __future__ import annotations

from pathlib import Path

import anyio
import asyncpg
import pytest

from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import import_once
from testkit.legacy import import_before_hosts
from testkit.synthetic import line, write_corpus

pytestmark = pytest.mark.anyio

OLD_TRACE = "0" * 31 + "1"


@pytest.fixture
async def filled_before_hosts(database_url: str, db: asyncpg.Connection, transcripts: Path) -> Path:
    """A database at schema 2 holding every line under ``transcripts`` (plus a quarantined line)."""
    await db.execute("DROP SCHEMA mnemo CASCADE")
    write_corpus(transcripts, target_bytes=200_000, seed=3)
    bad = transcripts / "-home-user-project-0" / "broken.jsonl"
    bad.write_bytes(
        line({"type": "user", "uuid": "u-ok"}) + b"{not json\n" + line({"type": "user", "uuid": "u2"})
    )
    await import_before_hosts(database_url, transcripts, OLD_TRACE)
    return transcripts


async def _state(db: asyncpg.Connection) -> dict[str, object]:
    return {
        "entries": await db.fetch(
            "SELECT key, source_offset, import_trace_id FROM mnemo.entries ORDER BY key"
        ),
        "files": await db.fetch("SELECT path, committed_offset, updated_at FROM mnemo.files ORDER BY path"),
        "quarantine": await db.fetch("SELECT source_path, source_offset FROM mnemo.quarantine ORDER BY 1, 2"),
        "exchanges": await db.fetch(
            "SELECT session_id, prompt_uuid, entry_count FROM mnemo.exchanges ORDER BY 1, 2"
        ),
    }


async def _hosts_on_rows(db: asyncpg.Connection) -> set[str]:
    return {
        row[0]
        for row in await db.fetch(
            "SELECT host FROM mnemo.files UNION SELECT source_host FROM mnemo.entries "
            "UNION SELECT source_host FROM mnemo.quarantine UNION SELECT source_host FROM mnemo.exchanges"
        )
    }


async def test_upgrade__first_importer_claims_the_old_rows_and_reads_nothing_again(
    database_url: str, db: asyncpg.Connection, filled_before_hosts: Path
) -> None:
    before = await _state(db)
    assert len(before["entries"]) > 300 and before["quarantine"]  # type: ignore[arg-type]

    sink = await PostgresSink.open(database_url, host_id="laptop")  # migrates to the newest schema
    try:
        summary = await import_once(sink, filled_before_hosts)
    finally:
        await sink.aclose()

    assert summary.as_dict()["entries_stored"] == 0
    assert summary.outcome.duplicates == 0  # not one line was sent to the database again
    assert summary.outcome.quarantined == {}
    assert await _state(db) == before  # same rows, same trace ids, checkpoints not even touched
    assert await _hosts_on_rows(db) == {"laptop"}
    assert await db.fetchval("SELECT claimed_by FROM mnemo.legacy_rows") == "laptop"


async def test_upgrade__the_claiming_host_continues_its_files_and_a_later_host_claims_nothing(
    database_url: str, db: asyncpg.Connection, filled_before_hosts: Path
) -> None:
    laptop = await PostgresSink.open(database_url, host_id="laptop")
    try:
        await import_once(laptop, filled_before_hosts)
        grown = next(filled_before_hosts.rglob("*.jsonl"))
        old_end = grown.stat().st_size
        with grown.open("ab") as f:
            f.write(line({"type": "user", "uuid": "after-upgrade", "sessionId": "s-new"}))
        summary = await import_once(laptop, filled_before_hosts)
    finally:
        await laptop.aclose()
    assert summary.as_dict()["entries_stored"] == 1 and summary.outcome.duplicates == 0
    new_row = await db.fetchrow(
        "SELECT source_host, source_offset FROM mnemo.entries WHERE key = 'after-upgrade'"
    )
    assert tuple(new_row) == ("laptop", old_end)  # type: ignore[arg-type]

    desk = await PostgresSink.open(database_url, host_id="desk")
    try:
        assert await desk.checkpoint(str(grown)) is None  # the laptop's checkpoint is not the desk's
    finally:
        await desk.aclose()
    assert await _hosts_on_rows(db) == {"laptop"}
    assert await db.fetchval("SELECT claimed_by FROM mnemo.legacy_rows") == "laptop"
    hosts = await db.fetch("SELECT host_id FROM mnemo.hosts ORDER BY 1")
    assert [h["host_id"] for h in hosts] == ["desk", "laptop"]


async def test_upgrade__importers_starting_together_leave_every_old_row_to_exactly_one_of_them(
    database_url: str, db: asyncpg.Connection, filled_before_hosts: Path
) -> None:
    sinks: dict[str, PostgresSink] = {}

    async def start(host: str) -> None:
        sinks[host] = await PostgresSink.open(database_url, host_id=host)

    async with anyio.create_task_group() as tasks:
        for host in ("h1", "h2", "h3", "h4"):
            tasks.start_soon(start, host)
    try:
        claimer = await db.fetchval("SELECT claimed_by FROM mnemo.legacy_rows")
        assert await _hosts_on_rows(db) == {claimer}
        summary = await import_once(sinks[claimer], filled_before_hosts)
        assert summary.as_dict()["entries_stored"] == 0 and summary.outcome.duplicates == 0
    finally:
        for sink in sinks.values():
            await sink.aclose()


async def test_fresh_database__checkpoints_and_quarantine_are_per_host(
    database_url: str, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "p" / "s.jsonl"
    path.parent.mkdir()
    path.write_bytes(line({"type": "user", "uuid": "u1", "sessionId": "s"}) + b"garbage\n")
    for host in ("a", "b"):
        sink = await PostgresSink.open(database_url, host_id=host)
        try:
            summary = await import_once(sink, transcripts)
        finally:
            await sink.aclose()
        assert sum(summary.outcome.quarantined.values()) == 1
    files = await db.fetch(
        "SELECT host, committed_offset FROM mnemo.files WHERE path = $1 ORDER BY 1", str(path)
    )
    assert [tuple(f) for f in files] == [("a", path.stat().st_size), ("b", path.stat().st_size)]
    quarantined = await db.fetch("SELECT source_host FROM mnemo.quarantine ORDER BY 1")
    assert [q["source_host"] for q in quarantined] == ["a", "b"]
    assert await db.fetchval("SELECT source_host FROM mnemo.entries WHERE key = 'u1'") == "a"  # first wins
