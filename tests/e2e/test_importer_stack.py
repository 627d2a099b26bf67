"""End to end on 127.0.0.1: importer daemon -> built collector (shipped config) -> Prometheus, with OTLP
sinks standing in for Tempo and Loki; then the collector and the database go away and come back, and
the shipped alert queries are evaluated against what Prometheus really holds."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnemo_otel.grafana import RULES as ALL_RULES
from mnemo_otel.grafana.slo import Recorded, recording_rules
from mnemo_otel.grafana.spec import RULES, AlertSpec
from mnemo_otel.host import default_host_id
from mnemo_otel.telemetry import names
from mnemo_otel.telemetry.names import MetricKind
from testkit import wait_for
from testkit.collector import Collector
from testkit.importing import entry
from testkit.otlp_sink import OtlpSink
from testkit.postgres_server import PostgresServer
from testkit.prometheus import Prometheus
from testkit.sql import scalar_or
from testkit.stack import running_backends

from ..telemetry.daemon import daemon_env, running_daemon

ENTRIES = "SELECT count(*) FROM mnemo.entries"

pytestmark = pytest.mark.e2e

HOST = default_host_id()
JOB = f"{names.SERVICE_NAMESPACE}/{names.SERVICE_NAME_DEFAULT}"


@dataclass
class Stack:
    prometheus: Prometheus
    tempo: OtlpSink
    loki: OtlpSink
    collector: Collector
    postgres: PostgresServer


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    postgres = PostgresServer()
    postgres.start()
    try:
        with running_backends(tmp_path) as backends:
            yield Stack(backends.prometheus, backends.tempo, backends.loki, backends.collector, postgres)
    finally:
        postgres.destroy()


def _rule(uid: str) -> AlertSpec:
    return next(rule for rule in RULES if rule.uid == uid)


def _value(prometheus: Prometheus, promql: str, at: float | None = None) -> float:
    samples = prometheus.query(promql, at=at)
    assert len(samples) == 1, samples
    return float(samples[0]["value"][1])


def _firing(prometheus: Prometheus, rule: AlertSpec, at: float | None = None) -> bool:
    return bool(prometheus.query(rule.condition, at=at))


def _sli(prometheus: Prometheus, series: str) -> float:
    return _value(prometheus, series) if prometheus.query(series) else float("nan")


def _check_recording_rules_loaded(prometheus: Prometheus) -> None:
    """Prometheus runs the shipped SLI rules (resolved through compose's mounts), none in error."""
    groups = {g["name"]: g for g in prometheus.api("/api/v1/rules", {"type": "record"})["groups"]}
    shipped = recording_rules()["groups"]
    assert set(groups) == {group["name"] for group in shipped}
    for group in shipped:
        loaded = groups[group["name"]]["rules"]
        assert [rule["name"] for rule in loaded] == [rule["record"] for rule in group["rules"]]
        assert all(rule["health"] != "err" for rule in loaded), loaded
    # The memory group runs every 5 minutes; the SLIs themselves have been evaluated already.
    assert all(rule["health"] == "ok" for rule in groups["mnemo-sli"]["rules"]), groups["mnemo-sli"]


def _append(path: Path, keys: range) -> None:
    with path.open("ab") as f:
        for i in keys:
            f.write(entry(f"k{i}", text=f"line {i}"))


def test_e2e__importer_to_prometheus_tempo_loki_survives_collector_and_database_outages(
    stack: Stack, transcripts: Path, tmp_path: Path
) -> None:
    prom = stack.prometheus
    dsn = stack.postgres.dsn()
    path = transcripts / "s.jsonl"
    _append(path, range(20))
    env = daemon_env(
        dsn,
        stack.collector.otlp_http_url,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
        MNEMO_IMPORTS__IDLE_BEAT_SECONDS="0.5",
        MNEMO_RETRY__INITIAL_SECONDS="0.2",
        MNEMO_RETRY__MAX_SECONDS="1",
    )
    log = tmp_path / "daemon.log"
    with running_daemon(transcripts, env, log) as daemon:
        entries = f"sum({names.ENTRIES_IMPORTED.prometheus})"
        wait_for(
            lambda: prom.query(entries) and _value(prom, entries) == 20,
            timeout=60,
            what="20 entries in Prometheus",
        )

        # Every contract metric, under its translated name, with the resource labels.
        for metric in names.METRICS:
            series = (
                f"{metric.prometheus}_count" if metric.kind is MetricKind.HISTOGRAM else metric.prometheus
            )
            found = prom.wait_for_query(series, what=series)
            labels = found[0]["metric"]
            assert labels["job"] == JOB and labels["instance"] == HOST, (series, labels)
            assert labels["service_name"] == names.SERVICE_NAME_DEFAULT
            assert labels["deployment_environment_name"] == "test"
        beat = _value(prom, f"max({names.HEARTBEAT.prometheus})")
        wait_for(
            lambda: _value(prom, f"max({names.HEARTBEAT.prometheus})") > beat,
            timeout=30,
            what="heartbeat to advance",
        )

        spans = stack.tempo.wait_for_spans(
            lambda s: s.name == names.SPAN_IMPORT, what="import spans at Tempo"
        )
        assert spans[0].attributes[names.ATTR_SESSION_ID] == "s1"
        logs = stack.loki.wait_for_logs(
            lambda r: "imported 20 entries" in str(r.body), what="import log at Loki"
        )
        assert logs[0].trace_id == spans[0].trace_id
        # Exemplars: the import-duration histogram links to the import's trace.
        exemplars = wait_for(
            lambda: prom.exemplars(
                f"{names.IMPORT_DURATION.prometheus}_bucket", start=time.time() - 600, end=time.time() + 60
            ),
            timeout=30,
            what="exemplars on the import duration",
        )
        linked = {e["labels"].get("trace_id") for series in exemplars for e in series["exemplars"]}
        assert spans[0].trace_id in linked

        # The shipped alert conditions are quiet while all is well.
        for uid in ("mnemo-heartbeat-stale", "mnemo-import-gap-warning", "mnemo-database-down"):
            assert not _firing(prom, _rule(uid)), uid
        assert _value(prom, _rule("mnemo-heartbeat-stale").query) < _rule("mnemo-heartbeat-stale").threshold

        # The SLIs, recorded by the shipped rules from the daemon's real series: this host is fresh.
        _check_recording_rules_loaded(prom)
        fresh = f'{Recorded.HEARTBEAT_FRESH}{{service_instance_id="{HOST}"}}'
        wait_for(lambda: _sli(prom, fresh) == 1, timeout=30, what="the host's heartbeat recorded fresh")
        age = _value(prom, f'{Recorded.HEARTBEAT_AGE}{{service_instance_id="{HOST}"}}')
        assert 0 <= age < 10, age
        wait_for(lambda: _sli(prom, Recorded.AVAILABILITY) == 1, timeout=30, what="availability 1")
        no_failures = f'{Recorded.ERRORS}{{slo="import_success",window="5m"}}'
        assert _value(prom, no_failures) == 0
        for rule in ALL_RULES:  # each Grafana query answers with data on the real series
            if rule.name.endswith("BudgetBurn") or rule.name == "MnemoWatchdog":
                assert prom.query(rule.query), rule.name

        # Collector down for a while: importing goes on, nothing is lost, metrics resume after.
        stack.collector.stop()
        _append(path, range(20, 50))
        wait_for(
            lambda: scalar_or(-1, dsn, ENTRIES) == 50, timeout=30, what="imports to go on without a collector"
        )
        wait_for(
            lambda: "telemetry export failing" in log.read_text(),
            timeout=30,
            what="an export to fail meanwhile",
        )
        stack.collector.start()
        wait_for(lambda: _value(prom, entries) == 50, timeout=60, what="metrics to resume after the outage")

        # Database down: the importer stays alive, says so, and the import gap grows; then it recovers.
        stack.postgres.stop()
        _append(path, range(50, 60))
        down = _rule("mnemo-database-down")
        wait_for(lambda: _firing(prom, down), timeout=60, what="the database-down condition")
        gap = _rule("mnemo-import-gap-warning").query
        wait_for(lambda: _value(prom, gap) >= 3, timeout=60, what="the import gap to grow while data waits")
        assert not _firing(prom, _rule("mnemo-heartbeat-stale"))  # alive, just blocked
        stack.postgres.start()
        wait_for(
            lambda: scalar_or(-1, dsn, ENTRIES) == 60, timeout=60, what="the importer to resume by itself"
        )
        wait_for(lambda: not _firing(prom, down), timeout=60, what="database-down to clear")
        wait_for(lambda: _value(prom, gap) == 0, timeout=60, what="the import gap to close")
        # The failed attempts of the outage count against import success; the imports before and
        # after it for it. The 30-day figures are recorded too.
        errors = f'{Recorded.ERRORS}{{slo="import_success",window="5m"}}'
        wait_for(lambda: 0 < _sli(prom, errors) < 1, timeout=30, what="import errors recorded")
        wait_for(
            lambda: 0 < _sli(prom, Recorded.IMPORT_SUCCESS_30D) < 1, timeout=30, what="import success 30d"
        )
        host_30d = f'{Recorded.HOST_AVAILABILITY_30D}{{service_instance_id="{HOST}"}}'
        assert 0.5 < _sli(prom, host_30d) <= 1
        _check_recording_rules_loaded(prom)

        # Killed: the heartbeat condition is met once the threshold has passed, and stays met.
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
    killed_at = time.time()
    stale = _rule("mnemo-heartbeat-stale")
    assert not _firing(prom, stale, at=killed_at)
    assert _firing(prom, stale, at=killed_at + stale.threshold + 10)
    assert _firing(prom, stale, at=killed_at + 3600)
    assert _value(prom, stale.query, at=killed_at + 3600) > 3000
    assert isinstance(daemon, subprocess.Popen)


def test_e2e__grpc_protocol_is_selectable(stack: Stack, transcripts: Path, tmp_path: Path) -> None:
    (transcripts / "s.jsonl").write_bytes(entry("g1"))
    env = daemon_env(
        stack.postgres.dsn(),
        f"http://{stack.collector.otlp_grpc_endpoint}",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
    )
    with running_daemon(transcripts, env, tmp_path / "daemon.log") as daemon:
        stack.prometheus.wait_for_query(
            f"{names.ENTRIES_IMPORTED.prometheus}{{entry_type='user'}} == 1", timeout=60
        )
        stack.tempo.wait_for_spans(lambda s: s.name == names.SPAN_IMPORT, what="a span sent over gRPC")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
