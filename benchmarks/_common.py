"""Pieces several benchmarks share: child import runs, fresh databases, medians, verdicts, env."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import asyncpg

from testkit.importing import clean_env
from testkit.postgres_server import PostgresServer

from ._report import REPO

__all__ = (
    "MB",
    "MIB",
    "base_env",
    "create_database",
    "import_in_child",
    "median",
    "verdict",
)

MB = 1_000_000
MIB = 1024 * 1024


base_env = clean_env  # the same rule as the tests: nothing of ours, the SDK's or Claude's leaks in


def create_database(server: PostgresServer, name: str) -> str:
    async def create() -> None:
        conn = await asyncpg.connect(server.dsn())
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    anyio.run(create)
    return server.dsn(name)


def import_in_child(
    dsn: str,
    root: Path,
    *,
    telemetry: bool,
    env: Mapping[str, str] | None = None,
    host: str | None = None,
) -> dict[str, float]:
    """One ``import_once`` in a child process (``benchmarks._import_child``); its JSON figures."""
    args = [sys.executable, "-m", "benchmarks._import_child", dsn, str(root)]
    if telemetry:
        args.append("--telemetry")
    if host is not None:
        args += ["--host", host]
    result = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, check=False, env=dict(env or base_env())
    )
    if result.returncode != 0:
        raise RuntimeError(f"import child failed ({result.returncode}):\n{result.stderr[-4000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"
