"""Every line type the real client writes is documented, stored under its own type and never dropped."""

from __future__ import annotations

import anyio.to_thread
import pytest

from testkit.claude_api import FakeMessagesApi
from testkit.claude_code import ClaudeHome
from testkit.claude_formats import documented_types, format_label, run_everyday_scenarios
from testkit.interop import ImporterDaemon, complete_lines, stored_types

from .test_sessions import judge

pytestmark = pytest.mark.anyio


async def test_everyday_use__every_line_type_is_documented_and_stored_as_written(
    api: FakeMessagesApi, claude: ClaudeHome, daemon: ImporterDaemon
) -> None:
    prompts = await anyio.to_thread.run_sync(run_everyday_scenarios, api, claude)
    lines = list(complete_lines(claude.projects))
    undocumented = {format_label(line) for line in lines} - documented_types()
    assert not undocumented, f"new line types {undocumented}: run python -m benchmarks.claude_formats"
    await judge(daemon, claude, prompts)
    stored = await stored_types(daemon.dsn)
    assert {line.key: line.kind for line in lines} == {line.key: stored[line.key] for line in lines}
