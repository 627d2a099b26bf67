"""Running ``mnemo-otel import`` and ``restore`` as a user does, and comparing files byte for byte."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from .chaos.harness import CLI, REPO, importer_env

__all__ = ("committed_prefix", "mnemo", "restored_copy", "sha256_of")


def mnemo(dsn: str, *args: str, **env: str) -> tuple[int, Any]:
    """``mnemo-otel ARGS`` with ``--json`` output parsed (the raw output when it is not JSON)."""
    done = subprocess.run(
        [*CLI, *args],
        cwd=REPO,
        env=importer_env(dsn, **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode, {"stdout": done.stdout, "stderr": done.stderr}


def committed_prefix(path: Path) -> bytes:
    """What the importer commits of a file: everything up to its last ``\\n``."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def restored_copy(to: Path, original: Path) -> Path:
    """Where ``restore --to TO`` puts ``original``."""
    return to / original.resolve().relative_to("/")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
