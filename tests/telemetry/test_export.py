"""Wire level: the daemon's OTLP/HTTP exports as a collector would receive them."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from mnemo_otel import __version__
from mnemo_otel.host import default_host_id
from mnemo_otel.telemetry import names
from testkit import wait_for
from testkit.importing import entry
from testkit.otlp_sink import OtlpSink, running_sink
from testkit.synthetic import line

from .daemon import daemon_env, exported_bytes, metric_points, metric_units, running_daemon

CANARY = "CANARY-4f1d9b-conversation-text"
IDLE_BEAT_SECONDS = 0.5
EXPORT_INTERVAL_SECONDS = 1.0
_KIND = {
    names.MetricKind.GAUGE: "gauge",
    names.MetricKind.COUNTER: "sum",
    names.MetricKind.HISTOGRAM: "histogram",
}


@pytest.fixture
def sink() -> object:
    with running_sink() as started:
        yield started


def _write_transcript_with_canaries(root: Path) -> None:
    bad = f'{{"type":"user","uuid":"broken","message":"{CANARY}'.encode()
    hostile = line(
        {"type": "user", "uuid": "h1", "sessionId": "sess-canary", "message": {"content": f"{CANARY}\x00"}}
    )
    (root / "sess-canary.jsonl").write_bytes(
        entry("p1", session="sess-canary", text=f"please remember {CANARY}")
        + entry("a1", session="sess-canary", kind="assistant", text=f"I will not forget {CANARY}")
        + bad
        + b"\n"
        + hostile
        + f'{{"type":"user","uuid":"tail","message":"{CANARY}'.encode()  # a pending, unterminated tail
    )


def test_export__metrics_spans_and_logs_follow_the_contract_and_never_carry_content(
    sink: OtlpSink, database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    assert isinstance(sink, OtlpSink)
    _write_transcript_with_canaries(transcripts)
    log = tmp_path / "daemon.log"
    env = daemon_env(
        database_url,
        sink.url,
        MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS="3600",
        MNEMO_IMPORTS__IDLE_BEAT_SECONDS=str(IDLE_BEAT_SECONDS),
        OTEL_METRIC_EXPORT_INTERVAL=str(int(EXPORT_INTERVAL_SECONDS * 1000)),
    )
    with running_daemon(transcripts, env, log) as proc:
        roots = sink.wait_for_spans(lambda s: s.name == names.SPAN_IMPORT, what="an import span")
        root = roots[0]
        assert root.attributes[names.ATTR_SESSION_ID] == "sess-canary"
        assert root.attributes[names.ATTR_TRANSCRIPT_PATH] == "sess-canary.jsonl"
        assert root.attributes["mnemo.entries.stored"] == 3
        assert root.resource["service.name"] == names.SERVICE_NAME_DEFAULT

        logs = sink.wait_for_logs(lambda r: "imported 3 entries" in str(r.body), what="the import log line")
        assert logs[0].trace_id == root.trace_id

        # Idle from here on, and no rescan for an hour: only the idle loop's own beat can move the
        # heartbeat. Every value exported meanwhile is at most one beat period old when collected.
        idle_since = time.time()

        def idle_points() -> list[Any] | None:
            points = [
                p for _, p in metric_points(sink, names.HEARTBEAT.name) if p.time_unix_nano > idle_since * 1e9
            ]
            return points if len(points) >= 4 else None

        fresh = wait_for(idle_points, timeout=30, what="four heartbeat exports while idle")
        ages = [point.time_unix_nano / 1e9 - point.as_double for point in fresh]
        assert max(ages) <= IDLE_BEAT_SECONDS + EXPORT_INTERVAL_SECONDS, ages
        assert fresh[-1].as_double > fresh[0].as_double
        wait_for(
            lambda: set(metric_units(sink)) >= {m.name for m in names.METRICS},
            timeout=30,
            what="every metric",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0

    units = metric_units(sink)
    for metric in names.METRICS:
        assert units[metric.name] == {f"{metric.unit}|{_KIND[metric.kind]}"}, metric.name
    resource, _ = metric_points(sink, names.HEARTBEAT.name)[-1]
    assert resource["service.name"] == "mnemo-importer"
    assert resource["service.namespace"] == "mnemo"
    assert resource["service.version"] == __version__
    assert resource["service.instance.id"] == default_host_id()
    assert resource["deployment.environment.name"] == "test"
    for wire in exported_bytes(sink):
        assert CANARY.encode() not in wire
    assert CANARY not in log.read_text()


def test_export__collector_unreachable_costs_one_warning_per_exporter_and_no_traceback(
    database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    from testkit import free_port

    (transcripts / "s.jsonl").write_bytes(entry("a") + entry("b"))
    log = tmp_path / "daemon.log"
    env = daemon_env(database_url, f"http://127.0.0.1:{free_port()}", OTEL_EXPORTER_OTLP_TIMEOUT="1")
    with running_daemon(transcripts, env, log) as proc:
        wait_for(lambda: "imported 2 entries" in log.read_text(), timeout=30, what="the import")
        # several export rounds of all three signals fail meanwhile
        wait_for(
            lambda: log.read_text().count("telemetry export failing") >= 3, timeout=30, what="export warnings"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
    text = log.read_text()
    assert text.count("telemetry export failing") <= 3
    assert "Traceback" not in text
