"""Part of ``setup.py``: exporter wrappers that know what was delivered, and a shutdown with a deadline.

The SDK's own shutdown waits for every queued batch, each retried for up to
``OTEL_EXPORTER_OTLP_TIMEOUT``, one provider after the other: with no collector that held the exit
for half a minute. Here the three providers flush side by side within one grace; whatever is still
trying at its end has its exporter shut down (which ends retry waits at once) and is abandoned to its
daemon thread. The process then exits with its own code.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = (
    "Delivery",
    "EndedSpans",
    "TrackedLogExporter",
    "TrackedMetricExporter",
    "TrackedSpanExporter",
    "shutdown_within",
)

_CUT_SECONDS = 0.2


@dataclass
class Delivery:
    """What the exporters did: export calls that succeeded or failed, and spans handed to the exporter."""

    succeeded: int = 0
    failed: int = 0
    spans_exported: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, ok: bool, spans: int = 0) -> None:
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1
            self.spans_exported += spans


class EndedSpans(SpanProcessor):
    """Counts sampled spans as they end: minus the spans handed to the exporter, what the batch
    processor dropped (its queue was full) once it has drained."""

    def __init__(self) -> None:
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.count += 1  # one thread ends spans (the event loop); a lost increment would only under-count


class TrackedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, delivery: Delivery) -> None:
        self._inner = inner
        self._delivery = delivery
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.FAILURE
        try:
            result = self._inner.export(spans)
        finally:
            self._delivery.record(result is SpanExportResult.SUCCESS, spans=len(spans))
        return result

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class TrackedLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, delivery: Delivery) -> None:
        self._inner = inner
        self._delivery = delivery
        self._closed = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = LogRecordExportResult.FAILURE
        try:
            result = self._inner.export(batch)
        finally:
            self._delivery.record(result is LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.shutdown()  # type: ignore[no-untyped-call]  # untyped upstream

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class TrackedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, delivery: Delivery) -> None:
        # the reader asks the exporter for its temporality and aggregation: the inner one's
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._delivery = delivery
        self._closed = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = MetricExportResult.FAILURE
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        finally:
            self._delivery.record(result is MetricExportResult.SUCCESS)
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if not self._closed:
            self._closed = True
            self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)


def shutdown_within(
    grace: float, flushes: Sequence[Callable[[], object]], cut: Sequence[Callable[[], object]]
) -> bool:
    """Run ``flushes`` side by side for at most ``grace`` seconds; True if all of them finished.

    At the deadline every ``cut`` runs (the exporters' shutdown: retries stop, connections close) and
    the flushes still running are left to their daemon threads, which the exit then ends.
    """
    deadline = time.monotonic() + max(0.0, grace)
    threads = [
        threading.Thread(target=flush, name=f"mnemo-telemetry-shutdown-{i}", daemon=True)
        for i, flush in enumerate(flushes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if all(not thread.is_alive() for thread in threads):
        return True
    # Closing is quick (set an event, close a session or channel); in a thread all the same, so an
    # exporter that hangs on it cannot hold the exit either.
    closing = threading.Thread(target=_close_all, args=(cut,), name="mnemo-telemetry-cut", daemon=True)
    closing.start()
    closing.join(_CUT_SECONDS)
    return False


def _close_all(cut: Sequence[Callable[[], object]]) -> None:
    for stop in cut:
        with contextlib.suppress(Exception):  # one failing to close must not spare the others
            stop()
