"""The real client under load and the daemon under fire: sessions at once, a SIGKILL mid-session."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from testkit.claude_api import BashCall, FakeMessagesApi, Stall, Text
from testkit.claude_code import ClaudeHome, ClaudeRun
from testkit.interop import ImporterDaemon, committed_offsets

from .test_sessions import judge

pytestmark = pytest.mark.anyio


async def test_three_sessions_at_once(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    prompts = [f"session {n} asks its own question" for n in range(3)]
    for n, prompt in enumerate(prompts):
        api.push_for(prompt, BashCall(f"echo from-session-{n}"), Text(f"session {n} is done"))
    procs = [claude.start("-p", prompt) for prompt in prompts]
    runs: list[ClaudeRun] = [await anyio.to_thread.run_sync(claude.finish, proc) for proc in procs]
    assert all(run.returncode == 0 for run in runs), runs
    assert [run.result["result"] for run in runs] == [f"session {n} is done" for n in range(3)]
    await judge(daemon, claude, {run.session_id: [prompt] for run, prompt in zip(runs, prompts, strict=True)})


async def test_the_daemon_sigkilled_while_a_session_writes_then_restarted(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    api.push(
        BashCall("echo step-one"),
        BashCall("sleep 1; echo step-two"),
        Stall(2.0, then=Text("after a stalled stream")),
    )
    proc = claude.start("-p", "a long session")
    with anyio.fail_after(60):
        while not any(offset > 0 for offset in (await committed_offsets(daemon.dsn)).values()):
            await anyio.sleep(0.05)
    await daemon.kill()  # the client goes on writing while no importer runs
    await anyio.sleep(1.0)
    await daemon.start()
    done = await anyio.to_thread.run_sync(claude.finish, proc)
    assert done.returncode == 0, done
    assert done.result["result"] == "after a stalled stream"
    await judge(daemon, claude, {done.session_id: ["a long session"]})
