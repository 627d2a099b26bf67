"""The daemon's side of the hooks: announced files outside the roots are imported through the same
per-file path, each path once; only regular ``*.jsonl`` files; a path that vanished is a loss only
if complete lines were seen; finished sessions stop being watched."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mnemo_otel.announce.spool import Announcement, Spool
from mnemo_otel.announce.store import AnnouncementStore
from mnemo_otel.announce.tracker import Announcements, normalise
from mnemo_otel.importer import Importer
from mnemo_otel.model import SourceLoss
from mnemo_otel.settings import ImportSettings
from mnemo_otel.state import LoopState
from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import FAST_RETRY

pytestmark = pytest.mark.anyio


def transcript_line(n: int, session: str = "s1") -> bytes:
    return json.dumps({"type": "user", "uuid": f"u-{session}-{n}", "sessionId": session}).encode() + b"\n"


class Rig:
    def __init__(self, sink: PostgresSink, tmp_path: Path, idle_seconds: float = 600.0) -> None:
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.spool = Spool(tmp_path / "data" / "announcements")
        self.state = LoopState()
        self.losses: list[SourceLoss] = []
        self.announced = Announcements(
            self.spool,
            AnnouncementStore(sink),
            roots=[self.root],
            state=self.state,
            idle_seconds=idle_seconds,
        )
        self.importer = Importer(
            sink,
            roots=[self.root],
            settings=ImportSettings(),
            retry=FAST_RETRY,
            retry_for=30,
            state=self.state,
            on_loss=self.losses.append,
            announced=self.announced,
        )

    def announce(self, path: Path, event: str = "Stop", session: str = "s1", at: float = 1.0) -> None:
        self.spool.append(Announcement("host", session, str(path), event, at))

    async def a_pass(self) -> None:
        await self.importer.import_once(tolerate_source_errors=True)
        await self.importer._mark_missing()  # the daemon's end of pass


async def offsets(sink: PostgresSink) -> dict[str, int]:
    async with sink.connection() as conn:
        rows = await conn.fetch("SELECT path, committed_offset FROM mnemo.files")
    return {r["path"]: r["committed_offset"] for r in rows}


async def announcements(sink: PostgresSink) -> dict[str, tuple[str | None, bool, bool]]:
    async with sink.connection() as conn:
        rows = await conn.fetch("SELECT path, refused, under_root, closed_at FROM mnemo.announcements")
    return {r["path"]: (r["refused"], r["under_root"], r["closed_at"] is not None) for r in rows}


async def test_tracker__an_announced_session_and_its_subagents_are_imported(
    sink: PostgresSink, tmp_path: Path
) -> None:
    rig = Rig(sink, tmp_path)
    session = rig.outside / "s1.jsonl"
    session.write_bytes(transcript_line(1) + transcript_line(2))
    agent = rig.outside / "s1" / "subagents" / "agent-a.jsonl"
    agent.parent.mkdir(parents=True)
    agent.write_bytes(transcript_line(1, "agent"))
    rig.announce(session, "SessionStart")
    rig.announce(session, "Stop", at=2.0)
    await rig.a_pass()
    assert await offsets(sink) == {str(session): session.stat().st_size, str(agent): agent.stat().st_size}
    assert rig.state.announced_files == 1
    session.write_bytes(session.read_bytes() + transcript_line(3))
    assert rig.announced.changed()
    await rig.a_pass()
    assert (await offsets(sink))[str(session)] == session.stat().st_size
    assert rig.state.announced_files == 1  # the same file again is no new announcement
    assert rig.spool.load_position() is not None  # recorded, so consumed


async def test_tracker__a_path_under_a_root_is_left_to_discovery(sink: PostgresSink, tmp_path: Path) -> None:
    rig = Rig(sink, tmp_path)
    inside = rig.root / "project" / "s2.jsonl"
    inside.parent.mkdir()
    inside.write_bytes(transcript_line(1, "s2"))
    rig.announce(rig.root / "project" / ".." / "project" / "s2.jsonl", session="s2")
    await rig.a_pass()
    assert await offsets(sink) == {str(inside): inside.stat().st_size}
    assert await announcements(sink) == {str(inside): (None, True, False)}


async def test_tracker__non_jsonl_and_symlinks_are_refused_with_a_log_line(
    sink: PostgresSink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(sink, tmp_path)
    notes = rig.outside / "notes.txt"
    notes.write_bytes(transcript_line(1))
    real = rig.outside / "real.jsonl"
    real.write_bytes(transcript_line(2))
    link = rig.outside / "link.jsonl"
    link.symlink_to(real)
    rig.announce(notes)
    rig.announce(link)
    with caplog.at_level(logging.WARNING, logger="mnemo_otel.importer"):
        await rig.a_pass()
    assert await offsets(sink) == {}
    assert await announcements(sink) == {
        str(notes): ("not_jsonl", False, False),
        str(link): ("symlink", False, False),
    }
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2
    assert "u-s1" not in caplog.text


async def test_tracker__a_vanished_path_is_a_loss_only_if_lines_were_seen(
    sink: PostgresSink, tmp_path: Path
) -> None:
    rig = Rig(sink, tmp_path)
    never = rig.outside / "never-written.jsonl"
    partial = rig.outside / "partial.jsonl"
    partial.write_bytes(b'{"type": "user", "uuid": "half')  # no complete line yet
    rig.announce(never, session="n")
    rig.announce(partial, session="p")
    await rig.a_pass()
    partial.unlink()
    await rig.a_pass()
    assert rig.losses == []
    assert await offsets(sink) == {}


async def test_tracker__an_ended_idle_imported_session_stops_being_watched(
    sink: PostgresSink, tmp_path: Path
) -> None:
    rig = Rig(sink, tmp_path, idle_seconds=0.0)
    session = rig.outside / "s3.jsonl"
    session.write_bytes(transcript_line(1, "s3"))
    rig.announce(session, "Stop", session="s3", at=1.0)
    await rig.a_pass()
    assert await announcements(sink) == {str(session): (None, False, False)}  # no SessionEnd yet
    rig.announce(session, "SessionEnd", session="s3", at=2.0)
    await rig.a_pass()
    assert await announcements(sink) == {str(session): (None, False, True)}
    assert rig.announced.files(lambda p, k: None) == []
    rig.announce(session, "SessionStart", session="s3", at=3.0)  # resumed: watched again
    await rig.a_pass()
    assert await announcements(sink) == {str(session): (None, False, False)}


def test_normalise__resolves_the_folder_not_the_file(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    assert normalise(str(tmp_path / "alias" / "x" / ".." / "s.jsonl")) == real / "s.jsonl"


async def test_tracker__an_unreadable_spool_never_stops_the_import(
    sink: PostgresSink, tmp_path: Path
) -> None:
    rig = Rig(sink, tmp_path)
    rig.spool.directory.mkdir(parents=True)
    rig.spool.path.mkdir()  # a folder where the spool should be
    inside = rig.root / "s4.jsonl"
    inside.write_bytes(transcript_line(1, "s4"))
    await rig.a_pass()
    assert await offsets(sink) == {str(inside): inside.stat().st_size}
