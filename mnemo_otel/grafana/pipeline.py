"""Rules on the telemetry pipeline itself: the collector dropping or queueing what the importer sends.

They watch the collector's own metrics (``collector.py``), so they are fleet-wide, not per host.
"""

from __future__ import annotations

from typing import Final

from mnemo_otel.grafana.collector import COLLECTOR
from mnemo_otel.grafana.spec import AlertSpec, PanelId, Severity

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
        summary=(
            "Collector exporter {{ $labels.exporter }} is dropping {{ $labels.signal }} "
            '({{ printf "%.2f" $values.A.Value }} items/s).'
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
        summary=(
            "Collector exporter {{ $labels.exporter }} queue is "
            "{{ humanizePercentage $values.A.Value }} full."
        ),
        description="A full sending queue drops new telemetry; the backend behind it is slow or down.",
        runbook="Check the backend of that exporter; the queue drains by itself once it answers.",
    ),
)
