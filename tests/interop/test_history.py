"""Sessions that grow after their first run: resumed, continued, forked and compacted by the real client."""

from __future__ import annotations

import json

import anyio.to_thread
import pytest

from testkit.claude_api import ApiError, FakeMessagesApi, Text
from testkit.claude_code import ClaudeHome
from testkit.interop import ImporterDaemon, complete_lines

from .test_sessions import judge, run

pytestmark = pytest.mark.anyio


async def test_resume_and_continue_append_to_the_same_file(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(Text("first answer"), Text("second answer"), Text("third answer"))
    first = await run(claude, "-p", "first question")
    await daemon.settle()  # the daemon has committed the file before the client appends to it again
    resumed = await run(claude, "-p", "--resume", first.session_id, "second question")
    continued = await run(claude, "-p", "--continue", "third question")
    assert first.session_id == resumed.session_id == continued.session_id
    assert len(claude.transcripts()) == 1
    # The client sent the whole history back: the archive has to hold what the next turn builds on.
    assert "first answer" in json.dumps(api.conversation[-1].messages)
    await judge(daemon, claude, {first.session_id: ["first question", "second question", "third question"]})


async def test_a_forked_session_writes_a_new_file_that_repeats_its_parents_lines(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(Text("parent answer"), Text("fork answer"))
    parent = await run(claude, "-p", "the parent's question")
    fork = await run(claude, "-p", "--resume", parent.session_id, "--fork-session", "the fork's question")
    assert fork.session_id != parent.session_id
    fork_file = next(path for path in claude.transcripts() if path.stem == fork.session_id)
    parent_uuids = {
        line.key for line in complete_lines(claude.projects) if line.path.stem == parent.session_id
    }
    repeated = [line for line in complete_lines(fork_file) if line.key in parent_uuids]
    assert repeated, "the fork repeats none of its parent's lines"
    assert {line.obj.get("sessionId") for line in repeated} == {fork.session_id}
    # The fork holds its own copies of its parent's lines: its exchanges are its whole history.
    await judge(
        daemon,
        claude,
        {
            parent.session_id: ["the parent's question"],
            fork.session_id: ["the parent's question", "the fork's question"],
        },
    )


async def test_compact_appends_a_boundary_and_a_summary_and_opens_no_exchange(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(Text("an answer worth compacting"), Text("<summary>We said hello.</summary>"))
    first = await run(claude, "-p", "a question")
    await run(claude, "-p", "--resume", first.session_id, "/compact")
    kinds = [
        (line.kind, line.obj.get("subtype"), line.obj.get("isCompactSummary"))
        for line in complete_lines(claude.projects)
    ]
    assert ("system", "compact_boundary", None) in kinds
    assert ("user", None, True) in kinds
    await judge(daemon, claude, {first.session_id: ["a question"]})


async def test_an_api_error_leaves_a_complete_transcript(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(ApiError(400, "the fake API refuses this request", times=50))
    failed = await anyio.to_thread.run_sync(lambda: claude.finish(claude.start("-p", "a refused question")))
    api.clear()
    assert failed.returncode != 0 and failed.result.get("is_error"), failed
    error_lines = [line for line in complete_lines(claude.projects) if line.obj.get("isApiErrorMessage")]
    assert error_lines, "the client wrote no API error line"
    # The refused prompt still opened an exchange: the user asked, whatever the API answered.
    await judge(daemon, claude, {failed.session_id: ["a refused question"]})
