"""A catch-up's small files committed several to a transaction store exactly what one by one would."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from mnemo_otel.model import BadLine, Batch, BatchOutcome, Checkpoint, GroupSink
from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import checkpoint, entry, import_once, refuse_poisoned_lines, stored_keys
from testkit.manifest import Manifest
from testkit.shapes import write_hostile_corpus

pytestmark = pytest.mark.anyio


class OneByOne:
    """The PostgreSQL sink without its group commit: every file in transactions of its own."""

    def __init__(self, sink: PostgresSink) -> None:
        self._sink = sink

    async def checkpoint(self, path: str) -> Checkpoint | None:
        return await self._sink.checkpoint(path)

    async def reset(self, path: str, root: str, *, expected_offset: int) -> None:
        await self._sink.reset(path, root, expected_offset=expected_offset)

    async def commit(self, batch: Batch) -> BatchOutcome:
        return await self._sink.commit(batch)

    async def report_tail(self, path: str, tail: BadLine, trace_id: str | None) -> bool:
        return await self._sink.report_tail(path, tail, trace_id)

    async def mark_missing(self, paths: list[str]) -> None:
        await self._sink.mark_missing(paths)


@pytest.fixture
def other_database_url(new_database: Callable[[], str]) -> str:
    return new_database()


_SNAPSHOT = {
    "entries": """SELECT key, entry_type, uuid, parent_uuid, session_id, ts, source_offset, line_sha256, raw,
                         data::text, source_path FROM mnemo.entries ORDER BY key""",
    "exchanges": """SELECT session_id, prompt_uuid, prompt_text, assistant_text, entry_count, started_at,
                           last_entry_at, last_entry_uuid, source_path FROM mnemo.exchanges
                    ORDER BY session_id, prompt_uuid""",
    "sessions": "SELECT session_id, first_entry_at, last_entry_at, entry_count FROM mnemo.sessions ORDER BY 1",
    "files": """SELECT path, committed_offset, head_sha256, head_length, mark_sha256, open_session_id,
                       open_prompt_uuid FROM mnemo.files ORDER BY path""",
    "blocks": """SELECT f.path, b.start_offset, b.end_offset, b.sha256 FROM mnemo.blocks b
                 JOIN mnemo.files f USING (file_id) ORDER BY 1, 2""",
    "copies": """SELECT f.path, c.line_offset, c.entry_key, c.sha256, c.session_id, c.first_session_id
                 FROM mnemo.line_copies c JOIN mnemo.files f USING (file_id) ORDER BY 1, 2""",
    "quarantine": """SELECT source_path, source_offset, error_kind, line_sha256, line_length FROM mnemo.quarantine
                     ORDER BY 1, 2""",
}


async def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {table: [tuple(r) for r in await conn.fetch(sql)] for table, sql in _SNAPSHOT.items()}
    finally:
        await conn.close()


async def _commits(url: str, under: Path) -> int:
    """How many transactions last wrote the rows of the files under ``under`` (each commit moves its
    files' checkpoints)."""
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM mnemo.files WHERE starts_with(path, $1)", f"{under}/"
        )
        return count
    finally:
        await conn.close()


def _small_sessions(project: Path, count: int) -> None:
    project.mkdir()
    for i in range(count):
        path = project / f"small-{i:02d}.jsonl"
        path.write_bytes(b"".join(entry(f"small-{i}-{j}", session=f"small-{i}") for j in range(20)))
        os.utime(path, (1_000 + i, 1_000 + i))


def _shared_exchange(project: Path) -> None:
    """Two files of one directory that both add lines to one exchange (a resumed session keeping its
    id): the group must merge them into one upsert, as two commits would have."""
    first, resumed = project / "shared-1.jsonl", project / "shared-2.jsonl"
    prompt = entry("p-shared", session="kept", text="the question")
    first.write_bytes(prompt + entry("a-1", session="kept", kind="assistant", text="first part"))
    resumed.write_bytes(
        prompt
        + entry("a-2", session="kept", kind="assistant", text="second part")
        + entry("a-3", session="kept", kind="assistant", text="third part")
    )
    os.utime(first, (1_000, 1_000))
    os.utime(resumed, (2_000, 2_000))


async def test_small_files__a_catch_up_in_groups_stores_exactly_what_one_by_one_does_in_fewer_commits(
    database_url: str, other_database_url: str, transcripts: Path
) -> None:
    files = write_hostile_corpus(transcripts, Manifest(), mb=0.4, seed=3)
    _shared_exchange(files[0].parent)
    _small_sessions(transcripts / "-home-user-many-small", 12)

    grouped = await PostgresSink.open(database_url)
    alone = await PostgresSink.open(other_database_url)
    try:
        assert isinstance(grouped, GroupSink) and not isinstance(OneByOne(alone), GroupSink)
        # One worker: the order of directories, and so first-seen-wins across them, is the same in both.
        together = await import_once(grouped, transcripts, concurrent_files=1)
        one_by_one = await import_once(OneByOne(alone), transcripts, concurrent_files=1)
    finally:
        await grouped.aclose()
        await alone.aclose()

    assert together.as_dict() == one_by_one.as_dict()
    assert await _snapshot(database_url) == await _snapshot(other_database_url)
    shared = [row for row in (await _snapshot(database_url))["exchanges"] if row[1] == "p-shared"]
    assert [(row[3], row[4]) for row in shared] == [("first part\nsecond part\nthird part", 4)]
    files_with_rows = len((await _snapshot(database_url))["files"])
    assert await _commits(other_database_url, transcripts) == files_with_rows
    assert await _commits(database_url, transcripts) < files_with_rows // 2
    assert await _commits(database_url, transcripts / "-home-user-many-small") == 1
    assert await _commits(other_database_url, transcripts / "-home-user-many-small") == 12


async def test_small_files__a_file_changed_under_its_checkpoint_in_a_run_is_reread_alone(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    paths = [transcripts / f"s{i}.jsonl" for i in range(5)]
    for i, path in enumerate(paths):
        path.write_bytes(entry(f"a{i}", session=f"s{i}") + entry(f"b{i}", session=f"s{i}"))
        os.utime(path, (1_000 + i, 1_000 + i))
    await import_once(sink, transcripts)
    # The middle file is replaced by another (new inode, other head); the others grow.
    paths[2].unlink()
    paths[2].write_bytes(entry("z2", session="s2"))
    for i, path in enumerate(paths):
        if i != 2:
            with path.open("ab") as f:
                f.write(entry(f"c{i}", session=f"s{i}"))
        os.utime(path, (2_000 + i, 2_000 + i))

    summary = await import_once(sink, transcripts)

    assert summary.files == 5
    expected = {f"{k}{i}" for i in range(5) for k in "abc" if i != 2} | {"a2", "b2", "z2"}
    assert await stored_keys(db) == expected
    for path in paths:
        assert await checkpoint(db, path) == path.stat().st_size


async def test_small_files__a_group_the_database_refuses_falls_back_to_one_file_at_a_time(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    await refuse_poisoned_lines(db)
    for i in range(4):
        lines = [entry(f"k{i}-{j}", session=f"s{i}") for j in range(3)]
        if i == 2:
            lines[1] = entry("poisoned", session="s2", poison=True)
        (transcripts / f"s{i}.jsonl").write_bytes(b"".join(lines))

    summary = await import_once(sink, transcripts)

    assert await stored_keys(db) == {f"k{i}-{j}" for i in range(4) for j in range(3)} - {"k2-1"}
    kinds = [r["error_kind"] for r in await db.fetch("SELECT error_kind FROM mnemo.quarantine")]
    assert kinds == ["rejected_by_db"]
    assert summary.files == 4
    for path in transcripts.glob("*.jsonl"):
        assert await checkpoint(db, path) == path.stat().st_size


async def test_small_files__commit_many_takes_one_batch_per_file(sink: PostgresSink) -> None:
    from mnemo_otel.model import FileIdentity

    batch = Batch("/x.jsonl", "/", FileIdentity(1, 1, "", 0), 0, 0, [], [])
    with pytest.raises(ValueError, match="one batch per file"):
        await sink.commit_many([batch, batch])


async def test_small_files__a_restart_over_imported_files_reads_them_together_and_writes_nothing(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    _small_sessions(transcripts / "-home-user-p", 6)
    first = await import_once(sink, transcripts)
    commits = {r["path"]: r["xmin"] for r in await db.fetch("SELECT path, xmin::text FROM mnemo.files")}
    with (transcripts / "-home-user-p" / "small-03.jsonl").open("ab") as f:
        f.write(entry("late", session="small-3"))

    again = await import_once(sink, transcripts)  # a new importer: it knows no checkpoint yet

    assert (first.files, again.files) == (6, 6)
    assert sum(again.outcome.stored.values()) == 1
    after = {r["path"]: r["xmin"] for r in await db.fetch("SELECT path, xmin::text FROM mnemo.files")}
    changed = sorted(Path(p).name for p in after if after[p] != commits[p])
    assert changed == ["small-03.jsonl"]  # the others were read and left alone
    for path in (transcripts / "-home-user-p").glob("*.jsonl"):
        assert await checkpoint(db, path) == path.stat().st_size
