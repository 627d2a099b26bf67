"""The real Claude Code CLI, pinned, run offline against the loopback fake of the Messages API.

Each `ClaudeHome` is a throwaway `HOME`: the client writes its transcripts under
`<home>/.claude/projects/<cwd slug>/`, and nothing it does reaches past 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ("ClaudeHome", "ClaudeRun", "claude_binary", "claude_version")

INSTALL_SCRIPT = Path(__file__).resolve().parent / "install.sh"
# A deadline, not a performance assertion: a run takes a few seconds; only a hung client gets near it.
RUN_TIMEOUT_SECONDS = 120.0
# The tools a test may script; root may not skip permissions, so they are allowed by name.
ALLOWED_TOOLS = "Bash,Agent"


@cache
def claude_binary() -> Path:
    """Path of the pinned client; installs it on first use (cached per user by install.sh)."""
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"claude_code/install.sh failed ({result.returncode}):\n{result.stderr}")
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"claude_code/install.sh printed {binary}, which is not an executable")
    return binary


@cache
def claude_version() -> str:
    """The client's own version string, e.g. ``2.1.328``."""
    out = subprocess.run(
        [str(claude_binary()), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.split()[0]


@dataclass(frozen=True)
class ClaudeRun:
    """One finished ``claude -p`` run."""

    args: tuple[str, ...]
    returncode: int
    result: dict[str, Any]
    stderr: str

    @property
    def session_id(self) -> str:
        session: str = self.result["session_id"]
        return session


class ClaudeHome:
    """A throwaway HOME with one working directory; the client runs there against `api_url`."""

    def __init__(self, home: Path, api_url: str, workdir: str = "work", **extra_env: str) -> None:
        self.home = home
        self.workdir = home / workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api_url = api_url
        self.extra_env = extra_env

    @property
    def config_dir(self) -> Path:
        return Path(self.extra_env.get("CLAUDE_CONFIG_DIR") or self.home / ".claude")

    @property
    def projects(self) -> Path:
        """The root the client writes transcripts under (and the importer watches)."""
        return self.config_dir / "projects"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "ANTHROPIC_BASE_URL": self.api_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-offline",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            **self.extra_env,
        }

    def command(self, *args: str) -> list[str]:
        return [str(claude_binary()), *args, "--allowedTools", ALLOWED_TOOLS, "--output-format", "json"]

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``claude ARGS`` in the background (e.g. ``"-p", "hello"``); finish it with `finish`."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen[str], args: tuple[str, ...] = ()) -> ClaudeRun:
        try:
            stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        result = _json_result(stdout)
        return ClaudeRun(args, proc.returncode, result, stderr)

    def run(self, *args: str) -> ClaudeRun:
        """``claude ARGS`` to the end; raises unless it exited 0."""
        done = self.finish(self.start(*args), args)
        if done.returncode != 0 or "session_id" not in done.result:
            raise RuntimeError(
                f"claude {' '.join(args)} exited {done.returncode}: {done.result} {done.stderr}"
            )
        return done

    def transcripts(self) -> list[Path]:
        return sorted(self.projects.rglob("*.jsonl")) if self.projects.exists() else []


def _json_result(stdout: str) -> dict[str, Any]:
    """The client's ``--output-format json`` result, or the raw output under ``raw``."""
    try:
        parsed = json.loads(stdout)
    except ValueError:
        return {"raw": stdout}
    return parsed if isinstance(parsed, dict) else {"raw": stdout}
