"""The restore drill with the real client: its sessions imported, its projects folder removed as its
clean-up would, every file restored byte for byte, and the client resuming a restored session."""

from __future__ import annotations

import json
import shutil

import anyio.to_thread
import pytest

from testkit.claude_api import BashCall, FakeMessagesApi, SubagentCall, Text
from testkit.claude_code import ClaudeHome
from testkit.interop import ImporterDaemon
from testkit.restoring import mnemo, sha256_of

from .test_sessions import run

pytestmark = pytest.mark.anyio


async def test_sessions_removed_from_disk_come_back_exactly_and_resume(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(BashCall("echo restored-history"), Text("first answer"))
    first = await run(claude, "-p", "the first prompt of the session")
    api.push(SubagentCall("inspect the folder", replies=(Text("inspected"),)), Text("waiting"), Text("done"))
    await run(claude, "-p", "--continue", "delegate something")
    api.push(Text("a fork's answer"))
    fork = await run(claude, "-p", "--resume", first.session_id, "--fork-session", "branch off")
    api.push(Text("<summary>compacted</summary>"))
    await run(claude, "-p", "--resume", fork.session_id, "/compact")  # S itself keeps its history
    await daemon.settle()
    originals = {path: path.read_bytes() for path in claude.transcripts()}
    assert len(originals) >= 3  # the session, its fork, a subagent
    documents = list(claude.projects.rglob("subagents/*.meta.json"))
    assert documents, "the client wrote no subagent description"
    originals |= {path: path.read_bytes() for path in documents}
    await daemon.kill()
    shutil.rmtree(claude.projects)  # what the client's own clean-up does after cleanupPeriodDays

    code, report = await anyio.to_thread.run_sync(lambda: mnemo(daemon.dsn, "restore", "--all", "--json"))
    assert code == 0, report
    assert sorted(report["restored"]) == sorted(str(p) for p in originals)
    for path, data in originals.items():
        assert sha256_of(path.read_bytes()) == sha256_of(data), path
    code, check = await anyio.to_thread.run_sync(lambda: mnemo(daemon.dsn, "restore", "--check", "--json"))
    assert (code, check["exact"]) == (0, len(originals)), check

    api.push(Text("resumed from the archive"))
    resumed = await run(claude, "-p", "--resume", first.session_id, "are you still there?")
    assert resumed.result["result"] == "resumed from the archive"
    assert "the first prompt of the session" in json.dumps(api.conversation[-1].messages)
    assert fork.session_id != first.session_id
