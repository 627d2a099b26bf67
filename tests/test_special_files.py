"""Only regular files are read: FIFOs, sockets and devices named ``*.jsonl`` are skipped with one warning
each (never opened: a FIFO would block the import forever), a directory so named is just a directory,
and a transcript that cannot be read is reported once per state and never stops the others.

CI runs as root, which reads every file; the unreadable-file tests run the importer without that
privilege: as ``nobody`` when that user can run this checkout's interpreter, otherwise as root without
the capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import cache, partial
from pathlib import Path

import anyio
import asyncpg
import pytest

from testkit import wait_for
from testkit.importing import clean_env, entry

NOBODY_UID, NOGROUP_GID = 65534, 65534
TIMEOUT_S = 120  # a hang guard: a FIFO opened for reading would block forever


def _rows(database_url: str) -> set[str]:
    async def keys() -> set[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return {r["key"] for r in await conn.fetch("SELECT key FROM mnemo.entries")}
        finally:
            await conn.close()

    return anyio.run(keys)


def _has(database_url: str, key: str) -> bool:
    return key in _rows(database_url)


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A transcript root another user can traverse (pytest's tmp_path is private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="mnemo-special-"))
    base.chmod(0o755)
    root = base / "projects"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _add_special_files(root: Path) -> None:
    os.mkfifo(root / "pipe.jsonl")
    short = tempfile.mkdtemp(prefix="s", dir="/tmp")  # AF_UNIX paths are limited to ~108 bytes
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(f"{short}/x")
        os.rename(f"{short}/x", root / "sock.jsonl")
    os.rmdir(short)
    (root / "null.jsonl").symlink_to("/dev/null")  # a device
    (root / "dir.jsonl").mkdir()
    (root / "dir.jsonl" / "inner.jsonl").write_bytes(entry("in-dir", session="d"))


def test_import__fifo_socket_device_and_directory_named_jsonl_do_not_stop_a_one_shot(
    database_url: str, transcripts: Path
) -> None:
    (transcripts / "a.jsonl").write_bytes(entry("a1") + entry("a2"))
    _add_special_files(transcripts)
    env = clean_env(MNEMO_DATABASE_URL=database_url, OTEL_SDK_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "import", "--json", str(transcripts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["files"] == 2  # a.jsonl and dir.jsonl/inner.jsonl
    assert summary["skipped_not_regular"] == 3
    assert _rows(database_url) == {"a1", "a2", "in-dir"}
    for name, kind in (("pipe.jsonl", "fifo"), ("sock.jsonl", "socket"), ("null.jsonl", "device")):
        warnings = [line for line in result.stderr.splitlines() if name in line]
        assert len(warnings) == 1, result.stderr
        assert f"a {kind}, not a regular file" in warnings[0]
    assert "dir.jsonl:" not in result.stderr


@cache
def _nobody_can_run_this_checkout() -> bool:
    probe = subprocess.run(
        [*_as_nobody(), sys.executable, "-c", "import mnemo_otel.cli, asyncpg"],
        capture_output=True,
        env=clean_env(PYTHONDONTWRITEBYTECODE="1", HOME="/"),
        check=False,
    )
    return probe.returncode == 0


def _as_nobody() -> list[str]:
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _unprivileged_env(root: Path, **extra: str) -> dict[str, str]:
    """A HOME the user can read (asyncpg looks there for a password file and certificates)."""
    return clean_env(HOME=str(root.parent), PYTHONDONTWRITEBYTECODE="1", **extra)


def _unprivileged(secret: Path) -> list[str]:
    """The command prefix running the importer unable to read ``secret`` (made unreadable here)."""
    if os.geteuid() != 0:
        secret.chmod(0o000)
        return []
    secret.chmod(0o600)
    if _nobody_can_run_this_checkout():
        return _as_nobody()  # secret stays root's
    os.chown(secret, NOBODY_UID, NOGROUP_GID)  # another user's private file; root without DAC caps
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_import__an_unreadable_transcript_is_reported_and_the_others_are_imported(
    database_url: str, shared_root: Path
) -> None:
    (shared_root / "a.jsonl").write_bytes(entry("a1"))
    (shared_root / "z.jsonl").write_bytes(entry("z1"))
    secret = shared_root / "m-secret.jsonl"
    secret.write_bytes(entry("secret"))
    prefix = _unprivileged(secret)
    env = _unprivileged_env(shared_root, MNEMO_DATABASE_URL=database_url, OTEL_SDK_DISABLED="true")
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "mnemo_otel", "import", "--json", str(shared_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 4, result.stderr  # the files it could read are in; it says one was not
    summary = json.loads(result.stdout)
    assert summary["unreadable_files"] == 1
    assert summary["files"] == 2
    assert _rows(database_url) == {"a1", "z1"}
    warnings = [line for line in result.stderr.splitlines() if "m-secret.jsonl" in line]
    assert len(warnings) == 1 and "Permission denied" in warnings[0], result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "mnemo-otel: error: 1 transcript(s) could not be read; the others were imported"
    )


def test_run__unreadable_file_and_fifo_are_reported_once_across_passes_and_picked_up_once_readable(
    database_url: str, shared_root: Path
) -> None:
    good = shared_root / "a.jsonl"
    good.write_bytes(entry("a1"))
    os.mkfifo(shared_root / "pipe.jsonl")
    secret = shared_root / "m-secret.jsonl"
    secret.write_bytes(entry("secret"))
    prefix = _unprivileged(secret)
    env = _unprivileged_env(
        shared_root,
        MNEMO_DATABASE_URL=database_url,
        MNEMO_HEALTH__PORT="0",
        MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS="0.5",
        OTEL_SDK_DISABLED="true",
    )
    log = shared_root.parent / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "mnemo_otel", "run", str(shared_root)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _rows(database_url) == {"a1"}, timeout=60, what="the readable file")
        for i in range(3):  # each append is imported by a later pass, which meets both files again
            key = f"more{i}"
            with good.open("ab") as f:
                f.write(entry(key))
            wait_for(partial(_has, database_url, key), timeout=60, what=f"append {i}")
        text = log.read_text()
        assert text.count("m-secret.jsonl") == 1, text
        assert text.count("pipe.jsonl") == 1, text
        # A new state (readable now) is a new chance: imported, and no new warning.
        if os.geteuid() == 0:
            os.chown(secret, 0, 0)
        secret.chmod(0o644)
        wait_for(lambda: "secret" in _rows(database_url), timeout=60, what="the file once readable")
        assert log.read_text().count("m-secret.jsonl") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()
