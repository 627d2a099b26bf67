"""``mnemo-otel restore``: every file back byte for byte, from the archive alone, and never a file
written where it should not be."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from testkit.chaos.harness import build_corpus
from testkit.restoring import committed_prefix, mnemo, restored_copy, sha256_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The hostile corpus: every real-world shape, bad lines, blank lines, CRLF, repeats, a partial tail."""
    root = tmp_path / "projects"
    build_corpus(root, mb=0.3, seed=7)
    return root


def imported(database_url: str, root: Path) -> None:
    code, summary = mnemo(database_url, "import", "--json", str(root))
    assert code == 0, summary


def test_restore_all__every_file_comes_back_byte_for_byte(
    database_url: str, corpus: Path, tmp_path: Path
) -> None:
    imported(database_url, corpus)
    to = tmp_path / "restored"
    to.mkdir()
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json")
    assert code == 0, report
    originals = sorted(corpus.rglob("*.jsonl"))
    nonempty = [p for p in originals if committed_prefix(p)]
    documents = sorted(corpus.rglob("subagents/*.meta.json"))
    assert documents, "the corpus has no subagent description"
    assert sorted(report["restored"]) == sorted(str(p) for p in [*nonempty, *documents])
    for original in nonempty:
        copy = restored_copy(to, original)
        assert sha256_of(copy.read_bytes()) == sha256_of(committed_prefix(original)), original
        assert copy.stat().st_mode & 0o777 == 0o600
    for document in documents:
        assert restored_copy(to, document).read_bytes() == document.read_bytes()
    assert report["bytes"] == sum(len(committed_prefix(p)) for p in nonempty) + sum(
        len(d.read_bytes()) for d in documents
    )


def test_restore_check__proves_the_archive_alone_can_rebuild_every_file(
    database_url: str, corpus: Path
) -> None:
    imported(database_url, corpus)
    code, report = mnemo(database_url, "restore", "--check", "--json")
    assert (code, report["inexact"]) == (0, []), report
    assert report["files"] == report["exact"] > 0


async def test_restore_check__names_a_file_whose_archived_lines_were_damaged(
    database_url: str, corpus: Path, db: asyncpg.Connection
) -> None:
    imported(database_url, corpus)
    damaged = await db.fetchrow(
        "UPDATE mnemo.blocks SET body = overlay(body placing 'X'::bytea from 3 for 1)"
        " WHERE (file_id, start_offset) = (SELECT file_id, min(start_offset) FROM mnemo.blocks"
        " GROUP BY file_id ORDER BY file_id LIMIT 1) RETURNING file_id"
    )
    assert damaged is not None
    gap = await db.fetchrow(
        "DELETE FROM mnemo.blocks WHERE (file_id, start_offset) = (SELECT file_id, max(start_offset)"
        " FROM mnemo.blocks WHERE file_id <> $1 GROUP BY file_id ORDER BY file_id LIMIT 1) RETURNING file_id",
        damaged["file_id"],
    )
    assert gap is not None
    code, report = mnemo(database_url, "restore", "--check", "--json")
    assert code == 5
    reasons = {item["path"]: item["reason"] for item in report["inexact"]}
    rows = await db.fetch(
        "SELECT file_id, path FROM mnemo.files WHERE file_id = ANY($1::bigint[])",
        [damaged["file_id"], gap["file_id"]],
    )
    paths: dict[int, str] = {row["file_id"]: row["path"] for row in rows}
    assert "do not match the digest" in reasons[paths[damaged["file_id"]]]
    assert (
        "checkpoint" in reasons[paths[gap["file_id"]]] or "no line archived" in reasons[paths[gap["file_id"]]]
    )
    assert report["exact"] == report["files"] - 2


async def test_restore__refuses_files_from_before_exact_lines_and_says_why(
    database_url: str, corpus: Path, db: asyncpg.Connection, tmp_path: Path
) -> None:
    imported(database_url, corpus)
    path = await db.fetchval(
        "UPDATE mnemo.files SET exact_from = committed_offset WHERE file_id = (SELECT min(file_id) FROM mnemo.files)"
        " RETURNING path"
    )
    code, report = mnemo(database_url, "restore", "--check", "--json")
    assert code == 5
    assert [item["path"] for item in report["inexact"]] == [path]
    assert "imported before exact archiving" in report["inexact"][0]["reason"]
    to = tmp_path / "restored"
    to.mkdir()
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json")
    assert code == 5
    assert not restored_copy(to, Path(path)).exists()
    assert len(report["restored"]) == report["files"] - 1


def test_restore__leaves_an_equal_file_alone_and_never_overwrites_a_different_one(
    database_url: str, corpus: Path, tmp_path: Path
) -> None:
    imported(database_url, corpus)
    originals = [p for p in sorted(corpus.rglob("*.jsonl")) if committed_prefix(p)]
    equal, different = originals[0], originals[1]
    to = tmp_path / "restored"
    for original, data in ((equal, committed_prefix(equal)), (different, b"someone else's file\n")):
        restored_copy(to, original).parent.mkdir(parents=True, exist_ok=True)
        restored_copy(to, original).write_bytes(data)
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json")
    assert code == 6
    assert report["unchanged"] == [str(equal)]
    assert [item["path"] for item in report["refused"]] == [str(restored_copy(to, different))]
    assert restored_copy(to, different).read_bytes() == b"someone else's file\n"
    assert len(report["restored"]) == report["files"] - 2


def test_restore__never_follows_a_symlink_in_the_way(database_url: str, corpus: Path, tmp_path: Path) -> None:
    imported(database_url, corpus)
    original = next(p for p in sorted(corpus.rglob("*.jsonl")) if committed_prefix(p))
    to = tmp_path / "restored"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link_parent = restored_copy(to, original).parent
    link_parent.parent.mkdir(parents=True)
    link_parent.symlink_to(elsewhere)
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json")
    assert code == 6, report
    assert any("symlink" in item["reason"] for item in report["refused"]), report["refused"]
    assert os.listdir(elsewhere) == []


async def test_restore__refuses_paths_a_hostile_host_could_plant(
    database_url: str, corpus: Path, db: asyncpg.Connection, tmp_path: Path
) -> None:
    imported(database_url, corpus)
    ids = [r["file_id"] for r in await db.fetch("SELECT file_id FROM mnemo.files ORDER BY file_id LIMIT 2")]
    await db.execute("UPDATE mnemo.files SET path = 'relative/x.jsonl' WHERE file_id = $1", ids[0])
    await db.execute(
        "UPDATE mnemo.files SET path = $2 WHERE file_id = $1", ids[1], f"{tmp_path}/../escape.jsonl"
    )
    to = tmp_path / "restored"
    to.mkdir()
    code, report = mnemo(database_url, "restore", "--all", "--to", str(to), "--json")
    assert code == 6, report
    refused = {item["path"] for item in report["refused"]}
    assert {"relative/x.jsonl", f"{tmp_path}/../escape.jsonl"} <= refused
    assert not (tmp_path / "escape.jsonl").exists()
    assert not list(to.rglob("x.jsonl")) and not list(to.rglob("escape.jsonl"))


def test_restore__a_session_id_brings_its_subagents_and_an_unknown_one_is_named(
    database_url: str, corpus: Path, tmp_path: Path
) -> None:
    imported(database_url, corpus)
    subagent = next(corpus.rglob("subagents/agent-*.jsonl"))
    session = subagent.parent.parent.name
    to = tmp_path / "restored"
    to.mkdir()
    code, report = mnemo(database_url, "restore", session, "no-such-session", "--to", str(to), "--json")
    assert code == 5
    assert [item["path"] for item in report["inexact"]] == ["no-such-session"]
    expected = {str(p) for p in corpus.rglob("*.jsonl") if session in p.parts or p.stem == session}
    expected = {p for p in expected if committed_prefix(Path(p))}
    expected |= {str(p) for p in subagent.parent.glob("*.meta.json")}
    assert any(p.endswith(".meta.json") for p in expected)
    assert set(report["restored"]) == expected
