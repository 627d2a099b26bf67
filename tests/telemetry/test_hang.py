"""A hung work loop: the exported heartbeat freezes while exports go on, and the watchdog restarts us;
an idle loop, by contrast, keeps beating and outlives its watchdog timeout."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import asyncpg

from mnemo_otel.telemetry import names
from mnemo_otel.watchdog import EXIT_STALLED
from testkit import wait_for
from testkit.importing import entry
from testkit.otlp_sink import running_sink

from .daemon import daemon_env, metric_points, running_daemon

WATCHDOG_SECONDS = 4


def _stays_alive(proc: subprocess.Popen[bytes], *, seconds: float) -> None:
    """Idle, with nothing to import and no rescan due, the daemon outlives its watchdog timeout."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert proc.poll() is None, (
            f"the idle daemon exited with {proc.returncode} (watchdog {WATCHDOG_SECONDS} s)"
        )
        time.sleep(0.1)


def test_hang__database_call_that_never_returns_freezes_heartbeat_and_watchdog_exits(
    database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a"))
    log = tmp_path / "daemon.log"
    env = daemon_env(
        database_url,
        None,
        MNEMO_WATCHDOG__TIMEOUT_SECONDS=str(WATCHDOG_SECONDS),
        MNEMO_IMPORTS__IDLE_BEAT_SECONDS="0.5",
        MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS="3600",  # only the idle loop's own beat keeps it alive
    )
    with running_sink() as sink:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
        with running_daemon(transcripts, env, log) as proc:
            wait_for(lambda: "imported 1 entries" in log.read_text(), timeout=30, what="the first import")
            _stays_alive(proc, seconds=WATCHDOG_SECONDS * 1.5)
            result: dict[str, object] = {}

            async def hold_lock_while_appending() -> None:
                conn = await asyncpg.connect(database_url)
                try:
                    async with conn.transaction():
                        # Every checkpoint read now waits forever: a database call that never returns.
                        await conn.execute("LOCK TABLE mnemo.files IN ACCESS EXCLUSIVE MODE")
                        with path.open("ab") as f:
                            f.write(entry("b"))
                        started = time.monotonic()
                        while proc.poll() is None and time.monotonic() - started < 60:
                            await anyio.sleep(0.1)
                        result["exit"] = proc.poll()
                        result["seconds"] = time.monotonic() - started
                finally:
                    await conn.close()

            anyio.run(hold_lock_while_appending)

    assert result["exit"] == EXIT_STALLED
    assert isinstance(result["seconds"], float) and result["seconds"] < 30
    text = log.read_text()
    assert "work loop stalled" in text
    assert "most recent call first" in text  # every thread's stack was dumped
    beats = [point.as_double for _, point in metric_points(sink, names.HEARTBEAT.name)]
    # The last exports before the exit all carry the same, frozen value: exports went on, beats did not.
    assert len(beats) >= 4
    assert beats[-1] == beats[-2] == beats[-3]
