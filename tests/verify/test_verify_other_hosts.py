"""Verify snapshots only the scrubbed host's keys: a line another host stored first must still count
as stored (looked up by key), and a line no host holds must still be missing."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.verify.run import VerifyOptions, run_verify
from testkit.importing import import_once
from testkit.synthetic import session_lines

pytestmark = pytest.mark.anyio

PROCESSES = VerifyOptions(workers=2, in_process_bytes=0, segment_bytes=8 * 1024)


def _write(root: Path, session: str, seed: int) -> int:
    project = root / "-home-user-p"
    project.mkdir(parents=True, exist_ok=True)
    lines = list(session_lines(session, turns=6, rng=random.Random(seed)))
    (project / f"{session}.jsonl").write_bytes(b"".join(lines))
    return len(lines)


async def test_verify__a_line_first_stored_by_another_host_is_not_missing(
    sink: PostgresSink, database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    shared = _write(first, "sess-shared", 1)
    shutil.copytree(first, second)  # the same session on a second machine
    own = _write(second, "sess-own", 2)
    await import_once(sink, first)
    other = await PostgresSink.open(database_url, host_id="host-b")
    try:
        await import_once(other, second)
        held_by_b = await db.fetchval("SELECT count(*) FROM mnemo.entries WHERE source_host = 'host-b'")
        assert held_by_b == own  # every shared line was stored by the first host

        report = await run_verify(other, [second], PROCESSES)
        assert (report.lines, report.stored, report.missing) == (shared + own, shared + own, 0)

        # A shared line gone from the archive is missing for both hosts; one of B's own, for B alone.
        gone_shared = await db.fetchval(
            "DELETE FROM mnemo.entries WHERE key = (SELECT min(key) FROM mnemo.entries"
            " WHERE session_id = 'sess-shared') RETURNING key"
        )
        gone_own = await db.fetchval(
            "DELETE FROM mnemo.entries WHERE key = (SELECT min(key) FROM mnemo.entries"
            " WHERE session_id = 'sess-own') RETURNING key"
        )
        report = await run_verify(other, [second], PROCESSES)
        assert {m.key for m in report.all_missing} == {gone_shared, gone_own}
        report = await run_verify(sink, [first], PROCESSES)
        assert {m.key for m in report.all_missing} == {gone_shared}
    finally:
        await other.aclose()
