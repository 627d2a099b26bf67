"""The real Claude Code CLI against the loopback fake API, with ``mnemo-otel run`` watching its projects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from testkit.claude_api import FakeMessagesApi, running_fake_api
from testkit.claude_code import ClaudeHome, claude_binary, claude_version
from testkit.interop import ImporterDaemon, running_daemon


@pytest.fixture(scope="session", autouse=True)
def pinned_claude() -> str:
    """Install (or find) the client before any test clears MNEMO_*: MNEMO_CLAUDE_CODE_VERSION picks it."""
    claude_binary()
    return claude_version()


@pytest.fixture
def api() -> Iterator[FakeMessagesApi]:
    with running_fake_api() as fake:
        yield fake


@pytest.fixture
def claude(tmp_path: Path, api: FakeMessagesApi) -> ClaudeHome:
    home = ClaudeHome(tmp_path / "home", api.url)
    home.projects.mkdir(parents=True)
    return home


@pytest.fixture
async def daemon(database_url: str, claude: ClaudeHome, tmp_path: Path) -> AsyncIterator[ImporterDaemon]:
    async with running_daemon(database_url, claude.projects, tmp_path / "daemon.log") as running:
        yield running
