"""Every line type the real client writes is documented, stored under its own type and never dropped."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import pytest

from mnemo_otel.transcripts.parse import key_block
from mnemo_otel.transcripts.reader import LineBlock, ReadResult, read_blocks
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
    # verify's fast keying (a block at a time) keys every real line as the importer's rule does
    assert verify_keys(claude.projects) == sorted((line.path, line.offset, line.key) for line in lines)


def verify_keys(root: Path) -> list[tuple[Path, int, str]]:
    """(file, offset, key) of every line, as ``verify`` keys whole blocks of it."""
    keys = []
    for path in sorted(root.rglob("*.jsonl")):
        for item in read_blocks(path, 0, max_line_bytes=64 << 20, result=ReadResult(end=0)):
            assert isinstance(item, LineBlock)
            keyed = key_block(item)
            assert not keyed.bad
            offsets = keyed.offsets(list(range(len(keyed.keys))))
            keys += [(path, offset, key) for offset, key in zip(offsets, keyed.keys, strict=True)]
    return sorted(keys)
