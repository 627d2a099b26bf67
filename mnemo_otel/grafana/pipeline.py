"""Rules on the telemetry pipeline itself: the collector dropping or queueing what the importer sends.

They watch the collector's own metrics (``collector.py``), so they are fleet-wide, not per host.
"""

from __future__ import annotations

from typing import Final

from mnemo_otel.grafana.collector import COLLECTOR
from mnemo_otel.grafana.spec import UNKNOWN, AlertSpec, PanelId, Severity, measured

__all__ = ("RULES",)


def _collector_failures() -> str:
    parts = [
        f'label_replace(sum by (exporter) (rate({counter}[5m])), "signal", "{signal}", "", "")'
        for signal, counter in COLLECTOR.send_failed
    ]
    return " or ".join(parts)


RULES: Final[tuple[AlertSpec, ...]] = (
    AlertSpec(
        name="MnemoTelemetryExportFailing",
        uid="mnemo-telemetry-export-failing",
        query=_collector_failures(),
        op="gt",
        threshold=0,
        pending="10m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.PIPELINE,
        summary=measured(
            "Collector exporter{{ with $labels.exporter }} {{ . }}{{ end }} is dropping"
            '{{ with $labels.signal }} {{ . }}{{ end }} ({{ printf "%.2f" .Value }} items/s).',
            f"Whether the collector drops telemetry {UNKNOWN}",
        ),
        description=(
            "The collector gives up on items after its retries. Failures towards Prometheus itself "
            "cannot be seen here; they show as MnemoHeartbeatStale."
        ),
        runbook="Check the collector logs and whether tempo, loki and prometheus are up and reachable.",
    ),
    AlertSpec(
        name="MnemoTelemetryQueueFull",
        uid="mnemo-telemetry-queue-full",
        query=(
            f"max by (exporter) ({COLLECTOR.queue_size}) / max by (exporter) ({COLLECTOR.queue_capacity})"
        ),
        op="gt",
        threshold=0.8,
        pending="10m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.PIPELINE,
        summary=measured(
            "Collector exporter{{ with $labels.exporter }} {{ . }}{{ end }} queue is "
            "{{ humanizePercentage .Value }} full.",
            f"How full the collector's sending queues are {UNKNOWN}",
        ),
        description="A full sending queue drops new telemetry; the backend behind it is slow or down.",
        runbook="Check the backend of that exporter; the queue drains by itself once it answers.",
    ),
)
