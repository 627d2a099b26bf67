"""The data contract on a real PostgreSQL: every complete line stored once or quarantined."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from functools import partial
from pathlib import Path

import anyio
import asyncpg
import orjson
import pytest

from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import (
    checkpoint,
    entry,
    import_once,
    importer,
    quarantine,
    refuse_poisoned_lines,
    stored_keys,
)

pytestmark = pytest.mark.anyio


async def test_import__hostile_lines_in_the_middle_are_quarantined_and_the_rest_imports(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    bad_lines = [
        b'{"type":"user","uuid":"trunc',
        b'{"type":"pr-link","prNu{"parentUuid":"p","uuid":"glued-inner"}',
        b'{"uuid":"g1"}{"uuid":"g2"}',
        b"[1,2,3]",
        b'{"uuid":"utf8","text":"\xc3\x28"}',
        b"\x00\x00\x00\x00\x00\x00",
    ]
    path = transcripts / "s.jsonl"
    content = (
        entry("a")
        + b"\n".join(bad_lines)
        + b"\n"
        + entry("b")
        + b"   \n"
        + entry("c").replace(b"\n", b"\r\n")
    )
    path.write_bytes(content)

    summary = await import_once(sink, transcripts)

    assert await stored_keys(db) == {"a", "b", "c"}
    rows = await quarantine(db)
    assert [raw for _, _, _, raw in rows] == bad_lines
    assert [kind for _, _, kind, _ in rows] == [
        "invalid_json",
        "invalid_json",
        "glued_lines",
        "not_object",
        "invalid_utf8",
        "nul_bytes",
    ]
    for _, offset, _, raw in rows:
        assert content[offset : offset + len(raw)] == raw
    assert await checkpoint(db, path) == len(content)
    assert summary.as_dict()["quarantined"] == len(bad_lines)
    assert summary.as_dict()["entries_stored"] == 3


async def test_import__json_that_jsonb_refuses_is_stored_losslessly(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    originals = [
        b'{"uuid":"nul","type":"user","text":"before\\u0000after"}',
        b'{"uuid":"sur","type":"user","text":"lone \\udc80 surrogate"}',
        b'{"type":"summary","summary":"no uuid \\u0000"}',
    ]
    (transcripts / "s.jsonl").write_bytes(b"\n".join(originals) + b"\n")

    await import_once(sink, transcripts)

    rows = {r["key"]: r for r in await db.fetch("SELECT key, data::text AS data, raw FROM mnemo.entries")}
    summary_key = "sha256:" + hashlib.sha256(originals[2]).hexdigest()
    assert set(rows) == {"nul", "sur", summary_key}
    assert rows["nul"]["raw"].encode() == originals[0]
    assert rows["sur"]["raw"].encode() == originals[1]
    assert rows[summary_key]["raw"].encode() == originals[2]
    assert orjson.loads(rows["nul"]["data"])["text"] == "before\ufffdafter"


async def test_import__envelope_columns_hold_exactly_what_the_line_says(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    stamps = {
        "first": "0001-01-01T00:00:00.000001+00:00",
        "before-epoch": "1969-12-31T23:59:59.999999Z",
        "offset": "2025-07-01T10:00:00.123456+05:30",
        "last": "9999-12-31T23:59:59.999999Z",
    }
    lines = [
        orjson.dumps({"uuid": u, "type": "user", "sessionId": "s", "parentUuid": "p", "timestamp": t})
        for u, t in stamps.items()
    ]
    lines.append(b'{"uuid":"odd","type":7,"sessionId":"","parentUuid":null,"timestamp":"yesterday"}')
    (transcripts / "s.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    await import_once(sink, transcripts)

    rows = {
        r["key"]: r
        for r in await db.fetch(
            "SELECT key, entry_type, uuid, parent_uuid, session_id, ts FROM mnemo.entries"
        )
    }
    for uuid, stamp in stamps.items():
        assert tuple(rows[uuid].values())[1:] == ("user", uuid, "p", "s", datetime.fromisoformat(stamp))
    assert tuple(rows["odd"].values())[1:] == ("", "odd", None, None, None)


async def test_import__resumed_session_repeating_uuids_stores_each_once_and_the_original_wins(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    first = transcripts / "b-original.jsonl"
    first.write_bytes(entry("u1") + entry("a1", kind="assistant"))
    resumed = transcripts / "a-resumed.jsonl"  # sorts first by name: age, not name, decides
    resumed.write_bytes(
        entry("u1", session="s2") + entry("a1", session="s2", kind="assistant") + entry("u2", session="s2")
    )
    os.utime(first, (1_000, 1_000))
    os.utime(resumed, (2_000, 2_000))
    (transcripts / "other").mkdir()  # another project keeps the second worker busy meanwhile
    (transcripts / "other" / "x.jsonl").write_bytes(b"".join(entry(f"x{i}", session="x") for i in range(50)))

    summary = await import_once(sink, transcripts)

    assert await stored_keys(db) == {"u1", "a1", "u2"} | {f"x{i}" for i in range(50)}
    assert summary.outcome.duplicates == 2
    owner = await db.fetchval("SELECT session_id FROM mnemo.entries WHERE key = 'u1'")
    assert owner == "s1"


async def test_import__key_repeated_inside_one_batch_first_copy_is_stored_and_counted(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    # One file, one batch: the same uuid first as s1's prompt, later as s2's assistant line.
    first = entry("dup", session="s1", text="the first copy")
    middle = entry("other", session="s1", kind="assistant", text="answer")
    path = transcripts / "s.jsonl"
    path.write_bytes(first + middle + entry("dup", session="s2", kind="assistant", text="a later copy"))

    summary = await import_once(sink, transcripts)

    row = await db.fetchrow(
        "SELECT entry_type, session_id, source_offset FROM mnemo.entries WHERE key = 'dup'"
    )
    assert row is not None and tuple(row) == ("user", "s1", 0)  # first seen wins
    # The counts describe the stored copy, not the one skipped.
    assert summary.as_dict()["entries_by_type"] == {"assistant": 1, "user": 1}
    assert summary.outcome.duplicates == 1
    # The later copy has other bytes and another session: a key conflict, kept as s2's own line.
    assert summary.outcome.key_conflicts == 1
    sessions = {r["session_id"]: r["entry_count"] for r in await db.fetch("SELECT * FROM mnemo.sessions")}
    assert sessions == {"s1": 2, "s2": 1}
    exchanges = [
        tuple(r) for r in await db.fetch("SELECT session_id, prompt_uuid, entry_count FROM mnemo.exchanges")
    ]
    assert exchanges == [("s1", "dup", 2)]
    assert summary.outcome.exchanges_created == 1


async def test_import__partial_last_line_waits_and_imports_whole_once_completed(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    complete = entry("a")
    tail = entry("b")
    path.write_bytes(complete + tail[:10])

    summary = await import_once(sink, transcripts)
    assert await stored_keys(db) == {"a"}
    assert await checkpoint(db, path) == len(complete)
    assert summary.pending_bytes == 10

    with path.open("ab") as f:
        f.write(tail[10:])
    await import_once(sink, transcripts)
    assert await stored_keys(db) == {"a", "b"}
    assert await quarantine(db) == []


async def test_import__unterminated_tail_past_grace_is_reported_then_cleared_when_completed(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    tail = entry("b")
    path.write_bytes(entry("a") + tail[:-5])
    os.utime(path, (1, 1))  # idle for a long time
    job = importer(sink, transcripts, tail_grace_seconds=60)

    await job.import_once(report_tails=True)
    await job.import_once(report_tails=True)  # reported once, not per pass

    rows = await quarantine(db)
    assert [(kind, raw) for _, _, kind, raw in rows] == [("unterminated_tail", tail[:-5])]
    assert await stored_keys(db) == {"a"}

    with path.open("ab") as f:
        f.write(tail[-5:])
    await job.import_once(report_tails=True)
    assert await stored_keys(db) == {"a", "b"}
    assert await quarantine(db) == []


async def test_import__truncated_file_is_reread_from_the_start(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a") + entry("b") + entry("c"))
    await import_once(sink, transcripts)

    with path.open("r+b") as f:
        f.truncate(0)
        f.write(entry("d"))
    summary = await import_once(sink, transcripts)

    assert await stored_keys(db) == {"a", "b", "c", "d"}
    assert await checkpoint(db, path) == len(entry("d"))
    assert sum(summary.outcome.stored.values()) == 1


async def test_import__replaced_file_is_reread_and_both_versions_are_kept(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a") + entry("b"))
    await import_once(sink, transcripts)

    replacement = transcripts / "tmp"
    replacement.write_bytes(entry("x", text="other") + entry("y") + entry("b") + entry("z"))
    replacement.replace(path)  # new inode, longer than before: only identity tells
    await import_once(sink, transcripts)

    assert await stored_keys(db) == {"a", "b", "x", "y", "z"}


async def test_import__rewritten_in_place_with_same_inode_is_detected_by_its_head(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a"))
    await import_once(sink, transcripts)
    with path.open("r+b") as f:
        f.write(entry("q") + entry("r"))
    await import_once(sink, transcripts)
    assert await stored_keys(db) == {"a", "q", "r"}


async def test_import__deleted_file_keeps_its_data(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a"))
    job = importer(sink, transcripts)
    await job.import_once()
    path.unlink()
    await job.import_once()
    await job._mark_missing()
    assert await stored_keys(db) == {"a"}
    assert await db.fetchval("SELECT missing_since IS NOT NULL FROM mnemo.files") is True


async def test_import__line_over_ten_megabytes_is_stored(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    image = "A" * (12 * 1024 * 1024)
    (transcripts / "s.jsonl").write_bytes(entry("small") + entry("big", text=image) + entry("after"))
    await import_once(sink, transcripts)
    assert await stored_keys(db) == {"small", "big", "after"}
    length = await db.fetchval(
        "SELECT length(data->'message'->>'content') FROM mnemo.entries WHERE key = 'big'"
    )
    assert length == len(image)


async def test_import__line_over_the_cap_is_quarantined_not_truncated(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    big = entry("big", text="B" * 5000)
    (transcripts / "s.jsonl").write_bytes(entry("a") + big + entry("b"))
    await import_once(sink, transcripts, max_line_bytes=1000)
    assert await stored_keys(db) == {"a", "b"}
    row = await db.fetchrow("SELECT error_kind, line_length, line_sha256 FROM mnemo.quarantine")
    assert row is not None
    assert row["error_kind"] == "oversize"
    assert row["line_length"] == len(big) - 1
    assert row["line_sha256"] == hashlib.sha256(big[:-1]).hexdigest()


async def test_import__exchanges_fold_across_batches_exactly_once(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    tool_result: dict[str, object] = {
        "type": "user",
        "uuid": "t1",
        "sessionId": "s1",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "x", "content": "out"}],
        },
    }
    from testkit.synthetic import line

    path = transcripts / "s.jsonl"
    path.write_bytes(
        entry("p1", text="first prompt")
        + entry("a1", kind="assistant", text="part one")
        + line(tool_result)
        + entry("a2", kind="assistant", text="part two")
        + entry("p2", text="second prompt")
    )
    await import_once(sink, transcripts, batch_max_lines=2)
    with path.open("ab") as f:
        f.write(entry("a3", kind="assistant", text="answer two"))
    await import_once(sink, transcripts, batch_max_lines=2)
    # A replay (truncate + same content) must not append or count anything twice.
    content = path.read_bytes()
    path.write_bytes(b"")
    await import_once(sink, transcripts)
    path.write_bytes(content)
    await import_once(sink, transcripts, batch_max_lines=3)

    rows = await db.fetch(
        "SELECT prompt_uuid, prompt_text, assistant_text, entry_count FROM mnemo.exchanges ORDER BY prompt_uuid"
    )
    assert [tuple(r) for r in rows] == [
        ("p1", "first prompt", "part one\npart two", 4),
        ("p2", "second prompt", "answer two", 2),
    ]


async def test_import__two_importers_at_once_neither_duplicate_nor_corrupt(
    database_url: str, db: asyncpg.Connection, transcripts: Path
) -> None:
    from testkit.synthetic import write_corpus

    write_corpus(transcripts, target_bytes=3_000_000, turns_per_session=30)
    path = next(transcripts.rglob("*.jsonl"))
    with path.open("ab") as f:
        f.write(b"{broken\n" + entry("tail-entry"))

    sinks = [await PostgresSink.open(database_url) for _ in range(2)]
    try:
        async with anyio.create_task_group() as tasks:
            for s in sinks:
                tasks.start_soon(partial(import_once, s, transcripts, batch_max_lines=200))
    finally:
        for s in sinks:
            await s.aclose()

    expected = set()
    for transcript in transcripts.rglob("*.jsonl"):
        for raw in transcript.read_bytes().splitlines():
            if raw.startswith(b"{broken"):
                continue
            obj = orjson.loads(raw)
            expected.add(obj.get("uuid") or "sha256:" + hashlib.sha256(raw).hexdigest())
    assert await stored_keys(db) == expected
    assert len(await quarantine(db)) == 1
    exchanges = await db.fetchval("SELECT count(*) FROM mnemo.exchanges")
    prompts = await db.fetchval("SELECT sum(entry_count) FROM mnemo.exchanges")
    assert exchanges > 0
    # every non-summary line of a session belongs to exactly one exchange
    lines_in_sessions = await db.fetchval("SELECT count(*) FROM mnemo.entries WHERE entry_type <> 'summary'")
    assert prompts == lines_in_sessions


async def test_import__a_line_postgres_refuses_is_isolated_and_quarantined(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    await refuse_poisoned_lines(db)
    lines = [entry(f"k{i}") for i in range(10)]
    lines[6] = entry("k6", poison=True)
    (transcripts / "s.jsonl").write_bytes(b"".join(lines))

    await import_once(sink, transcripts)

    assert await stored_keys(db) == {f"k{i}" for i in range(10)} - {"k6"}
    rows = await quarantine(db)
    assert [(kind, raw) for _, _, kind, raw in rows] == [("rejected_by_db", lines[6][:-1])]


async def test_import__file_replaced_by_one_of_the_same_size_is_noticed(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("aaaa"))
    job = importer(sink, transcripts)
    await job.import_once()
    replacement = transcripts / "tmp"
    replacement.write_bytes(entry("bbbb"))  # same length, different content
    os.utime(replacement, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    replacement.replace(path)
    await job.import_once()  # the same importer: its in-memory view must not hide the change
    assert await stored_keys(db) == {"aaaa", "bbbb"}


async def test_import__file_cut_short_and_grown_back_past_its_checkpoint_is_reread(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    path = transcripts / "s.jsonl"
    old = [entry(f"old-{i}", text="o" * 3000) for i in range(12)]  # well past the first 4 KiB
    path.write_bytes(b"".join(old))
    await import_once(sink, transcripts)
    checkpoint_before = await checkpoint(db, path)
    with path.open("r+b") as f:  # same inode, same head
        f.truncate(sum(map(len, old[:3])))
    with path.open("ab") as f:
        f.write(b"".join(entry(f"new-{i}", text="n" * 3000) for i in range(20)))
    assert path.stat().st_size > (checkpoint_before or 0)

    await import_once(sink, transcripts)

    assert await stored_keys(db) == {f"old-{i}" for i in range(12)} | {f"new-{i}" for i in range(20)}
    assert await quarantine(db) == []
