"""The daemon's restore drill, on real processes: after each scrub it proves the archive can give every
file back exactly, exports what cannot by kind, degrades ``health`` for damage only, and the repair the
runbook describes (reset the file's checkpoint, restart) makes the drill clean again."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mnemo_otel.telemetry import names
from testkit import free_port, http_get, wait_for
from testkit.importing import entry
from testkit.otlp_sink import OtlpSink, attributes, running_sink
from testkit.sql import fetch, scalar_or

from ..telemetry.daemon import daemon_env, metric_points, running_daemon

DAMAGED, BEFORE = names.RESTORE_DAMAGED, names.RESTORE_BEFORE_EXACT_LINES
# What the runbook has an operator run for a damaged file whose source still exists: the importer's own
# reset of a replaced file (a new generation, read again from byte 0).
RESET_FILE = """
UPDATE mnemo.files
SET committed_offset = 0, generation = generation + 1, exact_from = 0, device = NULL, inode = NULL,
    head_sha256 = NULL, head_length = 0, mark_sha256 = NULL, open_session_id = NULL,
    open_prompt_uuid = NULL
WHERE path = $1
"""


@pytest.fixture
def otlp() -> Iterator[OtlpSink]:
    with running_sink() as sink:
        yield sink


def _inexact(sink: OtlpSink, kind: str) -> list[float]:
    """Every exported value of the drill's gauge for ``kind``, in order."""
    return [
        float(point.as_int if point.HasField("as_int") else point.as_double)
        for _, point in metric_points(sink, names.RESTORE_INEXACT.name)
        if attributes(point.attributes).get(names.ATTR_RESTORE_KIND) == kind
    ]


def _last(sink: OtlpSink, kind: str) -> float | None:
    values = _inexact(sink, kind)
    return values[-1] if values else None


def _health(port: int) -> dict[str, Any]:
    _, body = http_get(f"http://127.0.0.1:{port}/healthz")
    report: dict[str, Any] = json.loads(body)
    return report


def _wait_drilled_exact(log: Path, files: int) -> None:
    """Until the daemon's log says a drill found ``files`` files, all exact."""
    said = f"restore drill: {files} of {files} files can be restored exactly; 0 damaged"
    wait_for(lambda: said in log.read_text(), timeout=60, what=f"a clean drill of {files} file(s)")


def _env(database_url: str, otlp: OtlpSink, port: int, tmp_path: Path) -> dict[str, str]:
    claude = tmp_path / "claude"  # Claude Code's default retention: the guard stays quiet
    claude.mkdir(exist_ok=True)
    return daemon_env(
        database_url,
        otlp.url,
        MNEMO_VERIFY__INTERVAL_SECONDS="1",
        MNEMO_HEALTH__PORT=str(port),
        CLAUDE_CONFIG_DIR=str(claude),
    )


def test_restore_drill__a_damaged_line_is_exported_degrades_health_and_a_reset_file_is_exact_again(
    database_url: str, transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(b"".join(entry(f"k{i}") for i in range(20)) + b"\n" + entry("last"))
    port = free_port()
    env = _env(database_url, otlp, port, tmp_path)
    log = tmp_path / "first.log"
    with running_daemon(transcripts, env, log) as proc:
        wait_for(
            lambda: scalar_or(-1, database_url, "SELECT count(*) FROM mnemo.entries") == 21,
            timeout=60,
            what="import",
        )
        _wait_drilled_exact(log, files=1)
        wait_for(lambda: _last(otlp, DAMAGED) == 0, timeout=30, what="a clean drill exported")
        assert _last(otlp, BEFORE) == 0
        quiet = _health(port)
        assert quiet["restore_inexact"] == {DAMAGED: 0, BEFORE: 0}
        assert (quiet["status"], quiet["notes"]) == ("healthy", [])

        fetch(database_url, "UPDATE mnemo.blocks SET body = overlay(body placing 'X'::bytea from 5 for 1)")
        wait_for(lambda: _last(otlp, DAMAGED) == 1, timeout=60, what="the drill to export 1 damaged file")
        assert _last(otlp, BEFORE) == 0
        damaged = wait_for(
            lambda: (h := _health(port))["status"] == "degraded" and h, timeout=30, what="health degraded"
        )
        assert damaged["restore_inexact"] == {DAMAGED: 1, BEFORE: 0}
        assert any("restore drill found 1 file(s)" in reason for reason in damaged["reasons"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    drill_lines = [line for line in log.read_text().splitlines() if "restore drill:" in line]
    assert any("1 damaged" in line and "WARNING" in line for line in drill_lines), drill_lines
    assert not any(str(path) in line or path.name in line for line in drill_lines)  # counts, never paths

    fetch(database_url, RESET_FILE, str(path))
    with otlp._lock:
        otlp.metrics.clear()  # what follows comes from the restarted daemon
    log = tmp_path / "second.log"
    with running_daemon(transcripts, env, log) as proc:
        wait_for(
            lambda: (
                scalar_or(-1, database_url, "SELECT committed_offset FROM mnemo.files") == path.stat().st_size
            ),
            timeout=60,
            what="the file read again",
        )
        _wait_drilled_exact(log, files=1)
        wait_for(lambda: _last(otlp, DAMAGED) == 0, timeout=30, what="the clean drill exported")
        assert _health(port)["status"] == "healthy"
        assert all(value == 0 for value in _inexact(otlp, DAMAGED))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_restore_drill__files_from_before_exact_lines_are_counted_apart_and_never_degrade_health(
    database_url: str, transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    (transcripts / "a.jsonl").write_bytes(entry("a1") + entry("a2"))
    (transcripts / "b.jsonl").write_bytes(entry("b1", session="s2") + entry("b2", session="s2"))
    port = free_port()
    with running_daemon(transcripts, _env(database_url, otlp, port, tmp_path), tmp_path / "d.log") as proc:
        wait_for(
            lambda: scalar_or(-1, database_url, "SELECT count(*) FROM mnemo.entries") == 4,
            timeout=60,
            what="import",
        )
        # what migration 0006 leaves on a file imported before it: exact lines only past its checkpoint
        fetch(
            database_url,
            "UPDATE mnemo.files SET exact_from = committed_offset WHERE path = $1",
            str(transcripts / "b.jsonl"),
        )
        wait_for(lambda: _last(otlp, BEFORE) == 1, timeout=60, what="the drill to count the old file")
        health = wait_for(
            lambda: (h := _health(port))["restore_inexact"] == {DAMAGED: 0, BEFORE: 1} and h,
            timeout=30,
            what="health to report it",
        )
        assert health["status"] == "healthy" and health["reasons"] == []
        assert any("1 file(s) were imported before exact lines" in note for note in health["notes"])
        assert _inexact(otlp, DAMAGED) and all(value == 0 for value in _inexact(otlp, DAMAGED))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
