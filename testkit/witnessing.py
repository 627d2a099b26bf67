"""The witness as a user runs it (``mnemo-otel witness`` and ``witness status``), for tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import free_port, http_get, wait_for
from .chaos.harness import CLI, REPO
from .importing import clean_env

__all__ = ("RunningWitness", "running_witness", "witness_env", "witness_status")


def witness_env(dsn: str, port: int, **extra: str) -> dict[str, str]:
    """Fast reconciliation and a one-second grace: a test waits seconds, not minutes."""
    settings = {
        "MNEMO_DATABASE_URL": dsn,
        "MNEMO_WITNESS__PORT": str(port),
        "MNEMO_WITNESS__INTERVAL_SECONDS": "0.2",
        "MNEMO_WITNESS__GRACE_SECONDS": "1",
        "MNEMO_RETRY__MAX_SECONDS": "1",
        "OTEL_SDK_DISABLED": "true",
    }
    return clean_env(**{**settings, **extra})


@dataclass(frozen=True)
class RunningWitness:
    url: str
    log: Path


@contextmanager
def running_witness(
    dsn: str, log: Path, port: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[RunningWitness]:
    """``mnemo-otel witness`` on ``port`` (a free one by default), its settings moved by ``env``."""
    port = port or free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "witness"], cwd=REPO, env=witness_env(dsn, port, **(env or {})), stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool | None:
        assert proc.poll() is None, log.read_text()  # it exited: say why at once
        return http_get(f"{url}/healthz")[0] == 200 or None

    try:
        wait_for(listening, timeout=60, what="the witness to listen")
        yield RunningWitness(url, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def witness_status(dsn: str, *args: str, **extra: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [*CLI, "witness", "status", "--json", *args],
        cwd=REPO,
        env=witness_env(dsn, 0, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {"stderr": done.stderr}
    return done.returncode, report
