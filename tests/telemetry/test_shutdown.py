"""Telemetry never holds the exit: with no collector (closed port) or one that never answers (a black
hole), a one-shot import and a daemon stopped by SIGTERM store every row and exit with their normal code.

The exporters' own timeout is set far beyond the subprocess timeouts here, so an exit that waited for
the exporters (as it did before the shutdown grace) fails the test by timing out."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit import free_port, wait_for
from testkit.importing import clean_env, entry
from testkit.sql import scalar

from .daemon import daemon_env, running_daemon

ENTRIES = "SELECT count(*) FROM mnemo.entries"

EXPORTER_TIMEOUT_S = "300"  # an exit waiting for the exporters would take minutes
EXIT_WITHIN_S = 90  # a hang guard, not a measurement: the grace is 2 s


@contextmanager
def _endpoint(kind: str) -> Iterator[str]:
    if kind == "closed port":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as hole:  # accepts connections (the kernel's backlog), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        yield f"http://127.0.0.1:{hole.getsockname()[1]}"


def _corpus(root: Path, files: int = 5, lines: int = 40) -> int:
    for f in range(files):
        (root / f"s{f}.jsonl").write_bytes(
            b"".join(entry(f"k{f}-{i}", session=f"s{f}") for i in range(lines))
        )
    return files * lines


@pytest.mark.parametrize("collector", ["closed port", "black hole"])
def test_import__collector_down_exits_0_with_every_row_and_one_line_about_telemetry(
    database_url: str, transcripts: Path, collector: str
) -> None:
    expected = _corpus(transcripts)
    with _endpoint(collector) as url:
        env = clean_env(
            MNEMO_DATABASE_URL=database_url,
            OTEL_EXPORTER_OTLP_ENDPOINT=url,
            OTEL_EXPORTER_OTLP_TIMEOUT=EXPORTER_TIMEOUT_S,
            OTEL_BSP_SCHEDULE_DELAY="50",  # exports start (and fail, or hang) while importing
            OTEL_BLRP_SCHEDULE_DELAY="50",
            OTEL_METRIC_EXPORT_INTERVAL="100",
        )
        result = subprocess.run(
            [sys.executable, "-m", "mnemo_otel", "import", "--json", str(transcripts)],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN_S,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries_stored"] == expected
    assert scalar(database_url, ENTRIES) == expected
    # Quiet: one line saying telemetry was not delivered, none of the SDK's per-exporter complaints.
    complaints = [line for line in result.stderr.splitlines() if "telemetry" in line or "xport" in line]
    assert len(complaints) == 1, result.stderr
    assert "telemetry could not be delivered to http://127.0.0.1:" in complaints[0]
    for noise in ("Transient error", "Failed to export", "dropping", "Traceback", "opentelemetry"):
        assert noise not in result.stderr


def test_import__collector_up_says_nothing_about_telemetry(database_url: str, transcripts: Path) -> None:
    from testkit.otlp_sink import running_sink

    expected = _corpus(transcripts, files=2)
    with running_sink() as sink:
        env = clean_env(MNEMO_DATABASE_URL=database_url, OTEL_EXPORTER_OTLP_ENDPOINT=sink.url)
        result = subprocess.run(
            [sys.executable, "-m", "mnemo_otel", "import", str(transcripts)],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN_S,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "telemetry" not in result.stderr
        spans = sink.wait_for_spans(lambda s: s.name == "mnemo.import", what="the import spans")
    assert len({s.trace_id for s in spans}) == 2  # flushed at exit: one trace per file
    assert scalar(database_url, ENTRIES) == expected


@pytest.mark.parametrize("collector", ["closed port", "black hole"])
def test_run__sigterm_with_collector_down_exits_0_after_committing(
    database_url: str, transcripts: Path, tmp_path: Path, collector: str
) -> None:
    expected = _corpus(transcripts)
    log = tmp_path / "daemon.log"
    with _endpoint(collector) as url:
        env = daemon_env(database_url, url, OTEL_EXPORTER_OTLP_TIMEOUT=EXPORTER_TIMEOUT_S)
        with running_daemon(transcripts, env, log) as proc:
            wait_for(lambda: scalar(database_url, ENTRIES) == expected, timeout=60, what="every row")
            with (transcripts / "s0.jsonl").open("ab") as f:
                f.write(entry("late", session="s0"))
            wait_for(
                lambda: scalar(database_url, ENTRIES) == expected + 1, timeout=60, what="the appended row"
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=EXIT_WITHIN_S) == 0
    text = log.read_text()
    assert "importer stopped" in text
    assert "telemetry could not be delivered" in text
    assert "Traceback" not in text
