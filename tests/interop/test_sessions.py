"""What the real client writes in everyday use reaches the archive whole, judged from its own files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio.to_thread
import pytest

from testkit.claude_api import BashCall, FakeMessagesApi, SubagentCall, Text
from testkit.claude_code import ClaudeHome, ClaudeRun
from testkit.interop import ImporterDaemon, exchanges_by_session, missing_from_archive, run_verify

pytestmark = pytest.mark.anyio


async def run(claude: ClaudeHome, *args: str) -> ClaudeRun:
    return await anyio.to_thread.run_sync(lambda: claude.run(*args))


async def judge(daemon: ImporterDaemon, claude: ClaudeHome, prompts: Mapping[str, Sequence[str]]) -> None:
    """Every complete line on disk is archived, verify agrees, and each session's exchanges are exactly
    the prompts the test typed (none for a tool result, a compaction or a subagent's task)."""
    await daemon.settle()
    missing = await missing_from_archive(daemon.dsn, claude.projects)
    assert not missing, [(m.path.name, m.offset, m.kind) for m in missing]
    code, report = await anyio.to_thread.run_sync(lambda: run_verify(daemon.dsn, claude.projects))
    assert (code, report.get("missing")) == (0, 0), report
    assert await exchanges_by_session(daemon.dsn) == {session: list(p) for session, p in prompts.items()}


async def test_a_plain_prompt(api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon) -> None:
    api.push(Text("Hello from the fake API."))
    done = await run(claude, "-p", "say hello")
    assert done.result["result"] == "Hello from the fake API."
    await judge(daemon, claude, {done.session_id: ["say hello"]})


async def test_bash_tool_use(api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon) -> None:
    api.push(BashCall("echo interop-marker-$((6 * 7))"), Text("The command printed 42."))
    done = await run(claude, "-p", "run a command")
    tool_results = [r for r in api.conversation if "interop-marker-42" in str(r.messages[-1])]
    assert tool_results, "the client never sent the command's output back"
    await judge(daemon, claude, {done.session_id: ["run a command"]})


async def test_a_subagent(api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon) -> None:
    api.push(
        SubagentCall("count the files here", replies=(BashCall("ls | wc -l"), Text("There are 0 files."))),
        Text("Waiting for the subagent."),
        Text("The subagent counted the files."),
    )
    done = await run(claude, "-p", "delegate a count")
    subagents = list(claude.projects.rglob("subagents/agent-*.jsonl"))
    assert subagents, "the client wrote no subagent transcript"
    await judge(daemon, claude, {done.session_id: ["delegate a count"]})
