"""The daemon's scrub checks the transcripts Claude Code's hooks announced outside its roots: the
daemon imports them, so a line of theirs missing from the archive must be found and repaired too."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.settings import Settings
from mnemo_otel.state import LoopState
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.verify.losses import LossLedger
from mnemo_otel.verify.scrub import Maintenance
from testkit.importing import entry, import_once

pytestmark = pytest.mark.anyio


async def test_scrub__repairs_a_line_missing_from_an_announced_transcript_and_its_subagent(
    sink: PostgresSink, db: asyncpg.Connection, database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "-home-user-q"
    session = outside / "sess-out.jsonl"
    subagent = outside / "sess-out" / "subagents" / "agent-a1.jsonl"
    subagent.parent.mkdir(parents=True)
    session.write_bytes(entry("o1", session="sess-out") + entry("o2", session="sess-out"))
    subagent.write_bytes(entry("s1", session="sess-out", isSidechain=True))
    await import_once(sink, outside)  # as the daemon imports announced files: same host, same checkpoints
    await db.execute(
        """INSERT INTO mnemo.announcements (host, path, session_id, first_event, last_event,
                                           first_announced_at, last_announced_at)
           VALUES ($1, $2, 'sess-out', 'SessionStart', 'SessionEnd', now(), now())""",
        sink.host_id,
        str(session),
    )
    await db.execute("DELETE FROM mnemo.entries WHERE key IN ('o2', 's1')")
    settings = Settings(database_url=database_url, host_id=sink.host_id, roots=[transcripts])
    state = LoopState()
    maintenance = Maintenance(
        sink=sink,
        losses=LossLedger(sink, sink.host_id, state),
        roots=[transcripts],
        settings=settings,
        state=state,
    )

    assert await maintenance.scrub()

    assert state.verify_missing == 2
    keys = {row["key"] for row in await db.fetch("SELECT key FROM mnemo.entries")}
    assert keys == {"o1", "o2", "s1"}
