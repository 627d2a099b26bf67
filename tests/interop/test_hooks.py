"""Claude Code's hooks announce every transcript: the real client, with ``mnemo-otel hook --install``
in its settings.json, gets a session outside every watched root archived by the running daemon, a
session inside the root archived once, and carries on normally when the hook cannot write."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from testkit.chaos.harness import complete_offsets, wait_for_files
from testkit.claude_api import BashCall, FakeMessagesApi, SubagentCall, Text
from testkit.claude_code import ClaudeHome, ClaudeRun
from testkit.interop import (
    complete_lines,
    fetch_rows,
    missing_from_archive,
    run_mnemo,
    run_verify,
    running_daemon,
)

pytestmark = pytest.mark.anyio

# A deadline, not a performance figure: the daemon polls announced files every second.
ARCHIVED_WITHIN_SECONDS = 30.0


def install_hook(settings: Path, data_dir: Path) -> None:
    code, output = run_mnemo(
        "postgresql://unused@127.0.0.1/unused",
        *("hook", "--install", "--settings", str(settings), "--data-dir", str(data_dir)),
        timeout=60,
    )
    assert code == 0, output


async def run(claude: ClaudeHome, *args: str) -> ClaudeRun:
    return await anyio.to_thread.run_sync(lambda: claude.run(*args))


async def test_a_session_outside_every_root_is_archived_through_its_hook(
    api: FakeMessagesApi, tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "mnemo-data"
    outside = tmp_path / "elsewhere" / "claude-config"
    claude = ClaudeHome(tmp_path / "home", api.url, CLAUDE_CONFIG_DIR=str(outside))
    watched = tmp_path / "home" / ".claude" / "projects"  # the daemon's root: the session is not there
    watched.mkdir(parents=True)
    install_hook(outside / "settings.json", data_dir)
    api.push(
        SubagentCall("count the files here", replies=(BashCall("ls | wc -l"), Text("There are 0 files."))),
        Text("Waiting for the subagent."),
        Text("The subagent counted the files."),
    )
    async with running_daemon(
        database_url, watched, tmp_path / "daemon.log", MNEMO_DATA_DIR=str(data_dir)
    ) as daemon:
        done = await run(claude, "-p", "delegate a count")
        session_file = next(p for p in claude.transcripts() if p.stem == done.session_id)
        assert list(claude.projects.rglob("subagents/agent-*.jsonl")), "the client wrote no subagent"
        expected = complete_offsets(claude.projects)
        assert not any(path.startswith(str(watched)) for path in expected)
        archived = False
        with anyio.move_on_after(ARCHIVED_WITHIN_SECONDS):
            archived = await wait_for_files(database_url, expected, proc=daemon.proc)
        assert archived, (daemon.log.read_text()[-3000:], expected)
        assert await missing_from_archive(database_url, claude.projects) == []
        rows = await fetch_rows(
            database_url, "SELECT path, session_id, last_event, under_root, refused FROM mnemo.announcements"
        )
    assert [(r["path"], r["session_id"], r["under_root"], r["refused"]) for r in rows] == [
        (str(session_file), done.session_id, False, None)
    ]
    assert rows[0]["last_event"] == "SessionEnd"
    code, report = await anyio.to_thread.run_sync(lambda: run_verify(database_url, session_file))
    assert (code, report.get("missing")) == (0, 0), report
    code, status = await anyio.to_thread.run_sync(
        lambda: run_mnemo(database_url, "witness", "status", "--json", timeout=120)
    )
    assert code == 0, status
    assert {k: status["announced"][k] for k in ("announced", "archived", "not_archived")} == {
        "announced": 1,
        "archived": 1,
        "not_archived": 0,
    }, status


async def test_a_session_in_the_watched_root_is_archived_once(
    api: FakeMessagesApi, claude: ClaudeHome, tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "mnemo-data"
    install_hook(claude.config_dir / "settings.json", data_dir)
    api.push(BashCall("echo hooked-$((6 * 7))"), Text("The command printed 42."))
    async with running_daemon(
        database_url, claude.projects, tmp_path / "daemon.log", MNEMO_DATA_DIR=str(data_dir)
    ) as daemon:
        done = await run(claude, "-p", "run a command")
        await daemon.settle()
        await anyio.sleep(2.5)  # two more passes, with the announcements read: nothing more may happen
        files = await fetch_rows(database_url, "SELECT path, committed_offset FROM mnemo.files")
        announced = await fetch_rows(database_url, "SELECT path, under_root FROM mnemo.announcements")
        entries = await fetch_rows(database_url, "SELECT count(*) AS n FROM mnemo.entries")
        copies = await fetch_rows(database_url, "SELECT count(*) AS n FROM mnemo.line_copies")
    on_disk = complete_offsets(claude.projects)
    assert {r["path"]: r["committed_offset"] for r in files} == on_disk  # one checkpoint per file
    session_file = next(path for path in on_disk if done.session_id in path)
    assert [(r["path"], r["under_root"]) for r in announced] == [(session_file, True)]
    assert entries[0]["n"] == len({line.key for line in complete_lines(claude.projects)})
    assert copies[0]["n"] == 0


async def test_a_broken_spool_never_stops_claude_code(api: FakeMessagesApi, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data-is-a-file"
    not_a_folder.write_text("in the way")
    config = tmp_path / "claude-config"
    install_hook(config / "settings.json", not_a_folder)
    claude = ClaudeHome(tmp_path / "home", api.url, CLAUDE_CONFIG_DIR=str(config))
    api.push(Text("Still here."))
    done = await run(claude, "-p", "hello")  # raises unless the client exited 0 with a result
    assert done.result["result"] == "Still here."
    transcripts = claude.transcripts()
    assert [p.stem for p in transcripts] == [done.session_id]
    assert list(complete_lines(transcripts[0])), "the client wrote its transcript"
    assert not_a_folder.read_text() == "in the way"
