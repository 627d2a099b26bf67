"""The shipped collector config, run by the real built collector, fans OTLP out as designed.

OpenTelemetry SDK (as the importer uses it) -> collector (collector/config.yaml, env overrides
only) -> Debian's Prometheus via remote write, and -> OTLP sinks standing in for Tempo and Loki.
Asserts outcomes on the real components: translated series names and resource labels in
Prometheus, exemplars, spans and trace-linked logs at the sinks, the collector's own telemetry
scraped by Prometheus, exporter failures counted, and metrics resuming after a collector restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mnemo_otel.telemetry import names
from mnemo_otel.telemetry.names import MetricKind, MetricName
from testkit import wait_for
from testkit.collector import Collector
from testkit.otlp_sink import OtlpSink
from testkit.prometheus import Prometheus
from testkit.stack import running_backends

pytestmark = pytest.mark.e2e

INSTANCE_ID = "stack-test-host"
RESOURCE = {
    "service.name": names.SERVICE_NAME_DEFAULT,
    "service.namespace": names.SERVICE_NAMESPACE,
    "service.version": "0.1.0-test",
    "service.instance.id": INSTANCE_ID,
    "deployment.environment.name": "stack-test",
}
# Labels every importer series must carry (resource attributes promoted by the collector config).
EXPECTED_LABELS = {
    "job": f"{names.SERVICE_NAMESPACE}/{names.SERVICE_NAME_DEFAULT}",
    "instance": INSTANCE_ID,
    "service_name": names.SERVICE_NAME_DEFAULT,
    "service_namespace": names.SERVICE_NAMESPACE,
    "service_version": "0.1.0-test",
    "service_instance_id": INSTANCE_ID,
    "deployment_environment_name": "stack-test",
}
# Attributes each metric is recorded with in this test (the contract's attribute keys).
METRIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    names.ENTRIES_IMPORTED.name: {names.ATTR_ENTRY_TYPE: "user"},
    names.QUARANTINED.name: {names.ATTR_ERROR_TYPE: "invalid_json"},
    names.IMPORT_FAILURES.name: {names.ATTR_ERROR_TYPE: "db_unavailable"},
    names.PROCESS_CPU_TIME.name: {"cpu.mode": "user"},
    names.FILESYSTEM_UTILIZATION.name: {names.ATTR_VOLUME: "data"},
    names.FILESYSTEM_FREE.name: {names.ATTR_VOLUME: "data"},
}


@dataclass
class Telemetry:
    """SDK providers wired like the importer's (OTLP/HTTP to the collector), flushed on demand."""

    collector_url: str
    gauges: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        resource = Resource.create(RESOURCE)
        self.meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=f"{self.collector_url}/v1/metrics", timeout=5),
                    export_interval_millis=3_600_000,  # exports only when the test flushes
                )
            ],
        )
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{self.collector_url}/v1/traces", timeout=5))
        )
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{self.collector_url}/v1/logs", timeout=5))
        )
        self.tracer = self.tracer_provider.get_tracer("mnemo_otel.importer")
        self.logger = logging.getLogger("mnemo_otel.stack_test")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self._handler = LoggingHandler(logger_provider=self.logger_provider)
        self.logger.addHandler(self._handler)
        meter = self.meter_provider.get_meter("mnemo_otel.importer")
        self.counters: dict[str, Counter] = {}
        self.histograms: dict[str, Histogram] = {}
        for metric in names.METRICS:
            if metric.kind is MetricKind.GAUGE:
                meter.create_observable_gauge(
                    metric.name, callbacks=[self._gauge_callback(metric)], unit=metric.unit
                )
            elif metric.kind is MetricKind.COUNTER:
                self.counters[metric.name] = meter.create_counter(metric.name, unit=metric.unit)
            else:
                self.histograms[metric.name] = meter.create_histogram(metric.name, unit=metric.unit)

    def _gauge_callback(self, metric: MetricName) -> Callable[[CallbackOptions], Iterable[Observation]]:
        """Observable gauges report whatever value the test last set (nothing before that)."""
        attrs = METRIC_ATTRIBUTES.get(metric.name, {})

        def callback(_options: CallbackOptions) -> list[Observation]:
            value = self.gauges.get(metric.name)
            return [] if value is None else [Observation(value, attrs)]

        return callback

    def record_all(self, value: float) -> None:
        """One data point for every contract metric; histograms inside a span (for exemplars)."""
        for metric in names.METRICS:
            attrs = METRIC_ATTRIBUTES.get(metric.name, {})
            if metric.kind is MetricKind.GAUGE:
                self.gauges[metric.name] = value
            elif metric.kind is MetricKind.COUNTER:
                self.counters[metric.name].add(1, attrs)
        with self.tracer.start_as_current_span(names.SPAN_IMPORT):
            for histogram in self.histograms.values():
                histogram.record(0.25)

    def flush(self) -> None:
        assert self.meter_provider.force_flush(timeout_millis=10_000)
        assert self.tracer_provider.force_flush(timeout_millis=10_000)
        assert self.logger_provider.force_flush(timeout_millis=10_000)

    def shutdown(self) -> None:
        self.logger.removeHandler(self._handler)
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


@dataclass
class Stack:
    prometheus: Prometheus
    tempo: OtlpSink
    loki: OtlpSink
    collector: Collector
    telemetry: Telemetry


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus + two sinks + the collector on the shipped config, all on 127.0.0.1."""
    with running_backends(tmp_path_factory.mktemp("stack")) as backends:
        telemetry = Telemetry(backends.collector.otlp_http_url)
        try:
            yield Stack(backends.prometheus, backends.tempo, backends.loki, backends.collector, telemetry)
        finally:
            telemetry.shutdown()


def _series_name(metric: MetricName) -> str:
    return f"{metric.prometheus}_count" if metric.kind is MetricKind.HISTOGRAM else metric.prometheus


def test_contract_metrics_land_under_translated_names_with_resource_labels(stack: Stack) -> None:
    beat = float(int(time.time()))
    stack.telemetry.record_all(beat)
    stack.telemetry.flush()

    heartbeat = stack.prometheus.wait_for_query(
        f"{names.HEARTBEAT.prometheus} == {beat}", what="the heartbeat sample in Prometheus"
    )
    labels = heartbeat[0]["metric"]
    assert {k: labels.get(k) for k in EXPECTED_LABELS} == EXPECTED_LABELS
    # SDK/process details stay on target_info, not on every series.
    assert not any(key.startswith("telemetry_sdk") for key in labels), labels

    for metric in names.METRICS:
        series = stack.prometheus.wait_for_query(
            _series_name(metric), what=f"{metric.name} as {_series_name(metric)}"
        )
        for sample in series:
            for key, value in METRIC_ATTRIBUTES.get(metric.name, {}).items():
                assert sample["metric"].get(key.replace(".", "_")) == value, (metric.name, sample)
    for metric in (names.IMPORT_DURATION, names.LAG):
        buckets = stack.prometheus.query(f"{metric.prometheus}_bucket")
        assert buckets, f"no {metric.prometheus}_bucket series"

    target_info = stack.prometheus.wait_for_query(f'target_info{{instance="{INSTANCE_ID}"}}')
    assert target_info[0]["metric"].get("telemetry_sdk_language") == "python"


def test_histogram_exemplars_carry_the_trace_id(stack: Stack) -> None:
    start = time.time() - 5
    stack.telemetry.record_all(float(int(time.time())))
    stack.telemetry.flush()
    query = f"{names.IMPORT_DURATION.prometheus}_bucket"

    def exemplar_trace_ids() -> set[str]:
        found = stack.prometheus.exemplars(query, start=start, end=time.time() + 5)
        return {
            ex["labels"].get("trace_id", "") for series in found for ex in series.get("exemplars", [])
        } - {""}

    trace_ids = wait_for(exemplar_trace_ids, timeout=30, what="exemplars on the duration histogram")
    # The exemplar leads to a trace that really reached Tempo.
    stack.tempo.wait_for_spans(
        lambda s: s.name == names.SPAN_IMPORT and s.trace_id in trace_ids,
        what=f"an exemplar's trace ({sorted(trace_ids)}) at the Tempo sink",
    )


def test_spans_reach_the_tempo_exporter(stack: Stack) -> None:
    tracer = stack.telemetry.tracer
    with (
        tracer.start_as_current_span(names.SPAN_IMPORT, attributes={names.ATTR_SESSION_ID: "session-spans"}),
        tracer.start_as_current_span("mnemo.import.write"),
    ):
        pass
    stack.telemetry.flush()

    roots = stack.tempo.wait_for_spans(
        lambda s: s.name == names.SPAN_IMPORT and s.attributes.get(names.ATTR_SESSION_ID) == "session-spans",
        what="the mnemo.import span at the Tempo sink",
    )
    root = roots[0]
    assert root.resource["service.name"] == names.SERVICE_NAME_DEFAULT
    assert root.resource["service.instance.id"] == INSTANCE_ID
    children = stack.tempo.wait_for_spans(
        lambda s: s.name == "mnemo.import.write" and s.trace_id == root.trace_id,
        what="the child span in the same trace",
    )
    assert children[0].span.parent_span_id == root.span.span_id
    assert all(path == "/v1/traces" for path in stack.tempo.paths)


def test_logs_with_trace_ids_reach_the_loki_exporter(stack: Stack) -> None:
    with stack.telemetry.tracer.start_as_current_span(names.SPAN_IMPORT) as span:
        stack.telemetry.logger.info("import committed", extra={names.ATTR_SESSION_ID: "session-logs"})
        trace_id = format(span.get_span_context().trace_id, "032x")
        span_id = format(span.get_span_context().span_id, "016x")
    stack.telemetry.flush()

    records = stack.loki.wait_for_logs(
        lambda r: r.attributes.get(names.ATTR_SESSION_ID) == "session-logs",
        what="the log record at the Loki sink",
    )
    record = records[0]
    assert record.body == "import committed"
    assert (record.trace_id, record.span_id) == (trace_id, span_id)
    assert record.resource["service.name"] == names.SERVICE_NAME_DEFAULT
    # Loki's native OTLP endpoint: the exporter appends /v1/logs to .../otlp.
    assert all(path == "/otlp/v1/logs" for path in stack.loki.paths)


def test_collector_self_telemetry_is_scraped_into_prometheus(stack: Stack) -> None:
    stack.prometheus.wait_for_query('up{job="otelcol"} == 1', what="the collector scrape target up")
    sent = stack.prometheus.wait_for_query(
        'otelcol_exporter_sent_metric_points_total{exporter="prometheus_remote_write"} > 0',
        what="the collector's own exporter counters",
    )
    assert sent[0]["metric"]["job"] == "otelcol"
    capacity = stack.prometheus.wait_for_query(
        'otelcol_exporter_queue_capacity{exporter="otlp_http/tempo"}', what="the sending queue capacity"
    )
    assert float(capacity[0]["value"][1]) == 50000
    stack.prometheus.wait_for_query(
        'otelcol_exporter_queue_size{exporter="otlp_http/loki"}', what="the sending queue size"
    )


def test_a_failing_backend_shows_in_otelcol_send_failed(stack: Stack) -> None:
    stack.tempo.fail_with = 400  # permanent error: the exporter gives up at once and counts it
    try:
        with stack.telemetry.tracer.start_as_current_span("mnemo.import.rejected"):
            pass
        stack.telemetry.flush()
        failed = stack.prometheus.wait_for_query(
            'otelcol_exporter_send_failed_spans_total{exporter="otlp_http/tempo"} > 0',
            what="otelcol_exporter_send_failed_spans_total for the Tempo exporter",
        )
        assert failed[0]["metric"]["job"] == "otelcol"
        assert stack.tempo.rejected > 0
    finally:
        stack.tempo.fail_with = None


def test_metrics_resume_after_a_collector_restart(stack: Stack) -> None:
    before = float(int(time.time()))
    stack.telemetry.record_all(before)
    stack.telemetry.flush()
    stack.prometheus.wait_for_query(f"{names.HEARTBEAT.prometheus} == {before}")

    stack.collector.restart()

    after = before + 1000  # a value no earlier export carried
    stack.telemetry.record_all(after)
    stack.telemetry.flush()
    resumed = stack.prometheus.wait_for_query(
        f"{names.HEARTBEAT.prometheus} == {after}", what="the heartbeat after the collector restart"
    )
    assert resumed[0]["metric"]["instance"] == INSTANCE_ID
    stack.prometheus.wait_for_query('up{job="otelcol"} == 1', what="the restarted collector scraped")
