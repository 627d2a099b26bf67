"""Migration 0006 and what it promises: every file kept as written (blank lines, repeats, CRLF, lines
over the size cap; a fork's copies its own), and archives from before it named, not passed off as exact."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.importer.batches import read_batch
from mnemo_otel.model import Batch
from mnemo_otel.settings import ImportSettings
from mnemo_otel.store import _oversize, block_codec
from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import entry, import_once
from testkit.legacy import import_before_hosts
from testkit.restoring import mnemo
from testkit.synthetic import write_corpus

pytestmark = pytest.mark.anyio


async def test_upgrade__old_files_are_named_inexact_and_new_ones_are_exact(
    database_url: str, db: asyncpg.Connection, transcripts: Path
) -> None:
    await db.execute("DROP SCHEMA mnemo CASCADE")
    write_corpus(transcripts, target_bytes=100_000, seed=5)
    old_files = sorted(transcripts.rglob("*.jsonl"))
    await import_before_hosts(database_url, transcripts, "0" * 32)
    grown = old_files[0]
    with grown.open("ab") as f:
        f.write(entry("appended-after-the-upgrade", session="s-old"))
    new = transcripts / "-home-user-new" / "new-session.jsonl"
    new.parent.mkdir()
    new.write_bytes(entry("n1", session="s-new") + b"\n" + entry("n2", session="s-new"))
    sink = await PostgresSink.open(database_url)  # migrates the schema-2 database, claims its rows
    try:
        await import_once(sink, transcripts)
    finally:
        await sink.aclose()

    code, report = mnemo(database_url, "restore", "--check", "--json", "--host", sink.host_id)
    assert code == 5
    assert {item["path"] for item in report["inexact"]} == {str(p) for p in old_files}
    assert all("imported before exact archiving" in item["reason"] for item in report["inexact"])
    assert report["exact"] == 1
    blocks = await db.fetch(
        "SELECT start_offset, f.exact_from FROM mnemo.blocks b JOIN mnemo.files f USING (file_id) WHERE f.path = $1",
        str(grown),
    )
    assert [(b["start_offset"], b["exact_from"]) for b in blocks] == [
        (blocks[0]["exact_from"], blocks[0]["exact_from"])
    ]


async def test_repeats_blank_lines_and_crlf_are_lines_of_their_own(
    db: asyncpg.Connection, transcripts: Path, sink: PostgresSink
) -> None:
    latch = b'{"type":"atis-latch","sessionId":"s1"}\n'
    path = transcripts / "s1.jsonl"
    path.write_bytes(latch + latch + b"\n  \t\n" + entry("u1").replace(b"\n", b"\r\n") + latch)
    await import_once(sink, transcripts)
    assert await archived_bytes(db) == path.read_bytes()
    assert await db.fetchval("SELECT count(*) FROM mnemo.entries") == 2  # one key per distinct line


async def test_a_fork_holds_its_own_copies_and_each_conflicting_copy_is_counted(
    db: asyncpg.Connection, transcripts: Path, sink: PostgresSink
) -> None:
    parent = transcripts / "parent.jsonl"
    parent.write_bytes(entry("u1", session="S", text="q") + entry("a1", session="S", kind="assistant"))
    first = await import_once(sink, transcripts)
    fork = transcripts / "fork.jsonl"
    fork.write_bytes(
        entry("u1", session="F", text="q")
        + entry("a1", session="F", kind="assistant")
        + entry("u2", session="F", text="q2")
    )
    second = await import_once(sink, transcripts)
    assert first.outcome.key_conflicts == 0
    assert second.outcome.key_conflicts == 2
    rows = await db.fetch(
        "SELECT entry_key, line FROM mnemo.session_lines WHERE session_id = 'F' ORDER BY line_offset"
    )
    assert [r["entry_key"] for r in rows] == ["u1", "a1", "u2"]
    assert {json.loads(r["line"])["sessionId"] for r in rows} == {"F"}
    exchanges = "SELECT session_id, prompt_uuid, entry_count FROM mnemo.exchanges ORDER BY 1, 2"
    before = [tuple(r) for r in await db.fetch(exchanges)]
    assert [(s, p) for s, p, _ in before] == [("F", "u1"), ("F", "u2"), ("S", "u1")]  # the fork's history
    replaced = fork.with_suffix(".new")
    replaced.write_bytes(fork.read_bytes())
    replaced.replace(fork)  # another inode: read again from byte 0
    third = await import_once(sink, transcripts)
    assert third.outcome.key_conflicts == 0
    assert [tuple(r) for r in await db.fetch(exchanges)] == before  # nothing folded twice


async def test_a_subagents_description_is_kept_exactly_each_version_once(
    db: asyncpg.Connection, transcripts: Path, sink: PostgresSink
) -> None:
    subagents = transcripts / "-home-user-p" / "S" / "subagents"
    subagents.mkdir(parents=True)
    (subagents / "agent-a1.jsonl").write_bytes(entry("x1", session="S", isSidechain=True))
    meta = subagents / "agent-a1.meta.json"
    meta.write_bytes(b'{"agentType":"general-purpose","description":"first"}')
    (subagents / "agent-a2.meta.json").symlink_to(meta)  # not beside a transcript, and not regular
    await import_once(sink, transcripts)
    await import_once(sink, transcripts)  # nothing new: nothing stored twice
    meta.write_bytes(b'{"agentType":"general-purpose","description":"second"}\n')
    await import_once(sink, transcripts)
    rows = await db.fetch("SELECT path, body FROM mnemo.documents ORDER BY first_seen_at")
    assert [(r["path"], bytes(r["body"])) for r in rows] == [
        (str(meta), b'{"agentType":"general-purpose","description":"first"}'),
        (str(meta), b'{"agentType":"general-purpose","description":"second"}\n'),
    ]


async def test_a_line_over_the_size_cap_is_kept_in_pieces_and_restored_exactly(
    database_url: str,
    db: asyncpg.Connection,
    transcripts: Path,
    sink: PostgresSink,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(_oversize, "CHUNK_BYTES", 40_000)
    huge = b'{"type":"user","uuid":"big","pad":"' + b"x" * 150_000 + b'"}\r\n'  # past the sample too
    path = transcripts / "big.jsonl"
    path.write_bytes(entry("u1") + huge + entry("u2"))
    summary = await import_once(sink, transcripts, max_line_bytes=2000)
    assert summary.outcome.quarantined["oversize"] == 1
    pieces = await db.fetch("SELECT seq, length(piece) AS n FROM mnemo.block_pieces ORDER BY seq")
    assert [r["seq"] for r in pieces] == [0, 1, 2, 3]
    assert [r["n"] for r in pieces] == [40_000, 40_000, 40_000, len(huge) - 120_000]  # the last with its "\n"
    to = tmp_path / "restored"
    to.mkdir()
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json", "--host", sink.host_id)
    assert code == 0, report
    assert (to / path.relative_to("/")).read_bytes() == path.read_bytes()


async def test_a_line_over_the_size_cap_that_changed_before_its_commit_is_kept_without_its_bytes(
    database_url: str, db: asyncpg.Connection, transcripts: Path, sink: PostgresSink
) -> None:
    """The drill then names the file; nothing wrong is ever kept as if exact."""
    path = transcripts / "big.jsonl"
    path.write_bytes(entry("u1") + b'{"pad":"' + b"x" * 100_000 + b'"}\n')
    read = read_batch(path, 0, ImportSettings(max_line_bytes=2000))
    path.write_bytes(entry("u1") + b'{"pad":"' + b"y" * 100_000 + b'"}\n')  # same size, other bytes
    batch = Batch(
        str(path), str(transcripts), read.identity, read.start, read.end, read.entries, read.bad_lines
    )
    await sink.commit(batch)
    assert await db.fetchval("SELECT count(*) FROM mnemo.block_pieces") == 0
    code, report = mnemo(database_url, "restore", "--check", "--json", "--host", sink.host_id)
    assert code == 5
    assert "do not match the digest" in report["inexact"][0]["reason"]


async def archived_bytes(db: asyncpg.Connection) -> bytes:
    """Every block's bytes, in order, as the archive gives them back."""
    rows = await db.fetch(
        "SELECT start_offset, end_offset, body, codec FROM mnemo.blocks ORDER BY start_offset"
    )
    parts = [block_codec.decompress(r["codec"], r["body"], r["end_offset"] - r["start_offset"]) for r in rows]
    assert None not in parts
    return b"".join(p for p in parts if p is not None)


async def test_blocks_are_stored_compressed_by_the_importer(
    db: asyncpg.Connection, transcripts: Path, sink: PostgresSink
) -> None:
    path = transcripts / "s1.jsonl"
    path.write_bytes(b"".join(entry(f"u{i}", session="s1", text="the same words " * 20) for i in range(200)))
    await import_once(sink, transcripts)
    codecs = await db.fetch(
        "SELECT codec, octet_length(body) AS stored, end_offset - start_offset AS size FROM mnemo.blocks"
    )
    assert [r["codec"] for r in codecs] == [block_codec.ZSTD]
    assert codecs[0]["stored"] < codecs[0]["size"] / 4
    assert await archived_bytes(db) == path.read_bytes()


async def test_blocks_from_before_compression_still_restore_exactly(
    database_url: str, db: asyncpg.Connection, transcripts: Path, sink: PostgresSink, tmp_path: Path
) -> None:
    """Blocks written before migration 0009 hold their bytes as they are (codec 'identity')."""
    write_corpus(transcripts, target_bytes=60_000, seed=9)
    await import_once(sink, transcripts)
    for row in await db.fetch("SELECT file_id, start_offset, end_offset, body, codec FROM mnemo.blocks"):
        raw = block_codec.decompress(row["codec"], row["body"], row["end_offset"] - row["start_offset"])
        await db.execute(
            "UPDATE mnemo.blocks SET body = $3, codec = 'identity' WHERE file_id = $1 AND start_offset = $2",
            row["file_id"],
            row["start_offset"],
            raw,
        )
    code, report = mnemo(database_url, "restore", "--check", "--json", "--host", sink.host_id)
    assert (code, report["inexact"]) == (0, []), report
    (tmp_path / "out").mkdir()
    code, report = mnemo(
        database_url, "restore", "--all", "--json", "--to", str(tmp_path / "out"), "--host", sink.host_id
    )
    assert code == 0, report
    for source in transcripts.rglob("*.jsonl"):
        assert (tmp_path / "out" / source.relative_to("/")).read_bytes() == source.read_bytes()
