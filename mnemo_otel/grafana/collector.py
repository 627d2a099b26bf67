"""The OpenTelemetry Collector's own metrics, as Prometheus scrapes them: the only place their names live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ("COLLECTOR", "CollectorMetrics")


@dataclass(frozen=True, slots=True)
class CollectorMetrics:
    """Names of the exporter failure counters and queue gauges."""

    send_failed: tuple[tuple[str, str], ...]
    """(signal, counter) pairs: items an exporter dropped after its retries."""
    queue_size: str
    queue_capacity: str


COLLECTOR: Final = CollectorMetrics(
    send_failed=(
        ("metrics", "otelcol_exporter_send_failed_metric_points_total"),
        ("traces", "otelcol_exporter_send_failed_spans_total"),
        ("logs", "otelcol_exporter_send_failed_log_records_total"),
    ),
    queue_size="otelcol_exporter_queue_size",
    queue_capacity="otelcol_exporter_queue_capacity",
)
