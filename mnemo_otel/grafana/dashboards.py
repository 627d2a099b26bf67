"""The importer dashboard, generated so its queries use the contract's metric names.

Layout top to bottom: the service-level objectives (``kpi.py``), status at a glance, throughput and success, latency, failures and backlog,
resources, telemetry pipeline and firing alerts, import traces (Tempo), importer logs (Loki).
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.archive import archive_row
from mnemo_otel.grafana.fleet_panels import fleet_table, host_variable, restrict_panels
from mnemo_otel.grafana.kpi import KPI_HEIGHT, kpi_row
from mnemo_otel.grafana.panels import panel as _panel
from mnemo_otel.grafana.panels import stat as _stat
from mnemo_otel.grafana.panels import steps as _steps
from mnemo_otel.grafana.panels import target as _target
from mnemo_otel.grafana.panels import timeseries as _timeseries
from mnemo_otel.grafana.spec import (
    COLLECTOR,
    DASHBOARD_UID,
    DATASOURCE_LOKI,
    DATASOURCE_TEMPO,
    EXPORT_INTERVAL_S,
    HEARTBEAT_STALE_AFTER_S,
    OUTAGE_BEAT_S,
    RULES,
    PanelId,
)
from mnemo_otel.telemetry import names

__all__ = ("dashboard",)

RATE: Final = "$__rate_interval"
_GAP = {rule.uid: rule.threshold for rule in RULES}


UPTIME_PANEL: Final = 7
RECENT_START_S: Final = 600
"""An uptime below this is shown orange: the importer has just (re)started."""
_STATUS_WIDTHS: Final = (4, 3, 3, 4, 3, 4, 3)
"""Widths of the status stats, left to right; they fill the dashboard's 24 columns."""


def _status_row() -> list[dict[str, Any]]:
    hb = names.HEARTBEAT.prometheus
    uptime = names.PROCESS_UPTIME.prometheus
    ok, warn, bad = "green", "orange", "red"
    stats = [
        _stat(
            PanelId.HEARTBEAT_AGE,
            "Heartbeat age",
            # The worst host: the oldest of the hosts' latest beats.
            f"time() - min(max by (service_instance_id) (last_over_time({hb}[30m])))",
            "s",
            _steps((ok, None), (warn, OUTAGE_BEAT_S + EXPORT_INTERVAL_S), (bad, HEARTBEAT_STALE_AFTER_S)),
        ),
        # min: after a restart under a new instance id the old series lingers for the lookback.
        _stat(UPTIME_PANEL, "Uptime", f"min({uptime})", "s", _steps((warn, None), (ok, RECENT_START_S))),
        _stat(
            PanelId.LAST_SUCCESS,
            "Since last import",
            f"time() - max(last_over_time({names.LAST_SUCCESS.prometheus}[7d]))",
            "s",
            _steps((ok, None)),
        ),
        _stat(
            PanelId.BACKLOG_AGE,
            "Backlog oldest age",
            f"max({names.BACKLOG_OLDEST_AGE.prometheus})",
            "s",
            _steps(
                (ok, None),
                (warn, _GAP["mnemo-import-gap-warning"]),
                (bad, _GAP["mnemo-import-gap-critical"]),
            ),
        ),
        _db_up_mappings(
            _stat(
                PanelId.DB_UP,
                "Database",
                f"min({names.DB_UP.prometheus})",
                "none",
                _steps((bad, None), (ok, 1)),
            )
        ),
        _stat(5, "Backlog", f"sum({names.BACKLOG.prometheus})", "bytes", _steps((ok, None))),
        # Uptime drops at every start under the same (stable) service.instance.id.
        _stat(6, "Restarts (24h)", f"sum(resets({uptime}[24h]))", "none", _steps((ok, None), (warn, 1))),
    ]
    x = 0
    for panel, width in zip(stats, _STATUS_WIDTHS, strict=True):
        panel["gridPos"].update(x=x, w=width)
        x += width
    return stats


def _db_up_mappings(panel: dict[str, Any]) -> dict[str, Any]:
    panel["fieldConfig"]["defaults"]["mappings"] = [
        {"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}
    ]
    return panel


def _throughput_rows() -> list[dict[str, Any]]:
    entries = names.ENTRIES_IMPORTED.prometheus
    count = f"{names.IMPORT_DURATION.prometheus}_count"
    fails = names.IMPORT_FAILURES.prometheus
    attempts = f"sum(rate({count}[{RATE}]))"
    failed = f"(sum(rate({fails}[{RATE}])) or vector(0))"
    duration = f"{names.IMPORT_DURATION.prometheus}_bucket"
    lag = f"{names.LAG.prometheus}_bucket"

    def quantiles(bucket: str) -> list[dict[str, Any]]:
        return [
            _target(f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RATE}])))", f"p{q[2:]}", ref)
            for q, ref in (("0.50", "A"), ("0.95", "B"), ("0.99", "C"))
        ]

    duration_panel = _timeseries(14, "Import duration", (0, 12, 12, 8), "s", quantiles(duration))
    for target in duration_panel["targets"]:
        target["exemplar"] = True
    return [
        _timeseries(
            10,
            "Imported per second",
            (0, 4, 12, 8),
            "ops",
            [
                _target(f"sum by (entry_type) (rate({entries}[{RATE}]))", "{{entry_type}}"),
                _target(f"sum(rate({names.EXCHANGES_IMPORTED.prometheus}[{RATE}]))", "exchanges", "B"),
                _target(f"sum(rate({names.DUPLICATES.prometheus}[{RATE}]))", "duplicates", "C"),
                # Transcripts Claude Code's hooks named for the first time: zero without the hooks.
                _target(f"sum(rate({names.ANNOUNCED.prometheus}[{RATE}]))", "announced transcripts", "D"),
            ],
        ),
        _timeseries(
            11,
            "Import success rate",
            (12, 4, 12, 8),
            "percentunit",
            [_target(f"{attempts} / ({attempts} + {failed})", "success")],
        ),
        duration_panel,
        _timeseries(15, "Lag: written -> committed", (12, 12, 12, 8), "s", quantiles(lag)),
    ]


def _problem_rows() -> list[dict[str, Any]]:
    fails = names.IMPORT_FAILURES.prometheus
    quarantined = names.QUARANTINED.prometheus
    return [
        _timeseries(
            PanelId.FAILURES,
            "Import failures by type",
            (0, 20, 8, 8),
            "short",
            [_target(f"sum by (error_type) (increase({fails}[{RATE}]))", "{{error_type}}")],
        ),
        _timeseries(
            PanelId.QUARANTINE,
            "Quarantined lines by type",
            (8, 20, 8, 8),
            "short",
            [_target(f"sum by (error_type) (increase({quarantined}[{RATE}]))", "{{error_type}}")],
        ),
        _timeseries(
            16,
            "Backlog",
            (16, 20, 8, 8),
            "bytes",
            [_target(f"sum({names.BACKLOG.prometheus})", "waiting bytes")],
        ),
    ]


def _resource_row() -> list[dict[str, Any]]:
    cpu = names.PROCESS_CPU_TIME.prometheus
    return [
        _timeseries(
            PanelId.MEMORY,
            "Memory",
            (0, 28, 6, 8),
            "bytes",
            [_target(f"max by (instance) ({names.PROCESS_MEMORY.prometheus})", "{{instance}}")],
        ),
        _timeseries(
            21, "CPU", (6, 28, 6, 8), "percentunit", [_target(f"sum by (instance) (rate({cpu}[{RATE}]))")]
        ),
        _timeseries(
            PanelId.DISK,
            "Disk used",
            (12, 28, 6, 8),
            "percentunit",
            [
                _target(
                    f"max by (mnemo_volume) ({names.FILESYSTEM_UTILIZATION.prometheus})", "{{mnemo_volume}}"
                )
            ],
        ),
        _timeseries(
            24,
            "Open file descriptors",
            (18, 28, 6, 8),
            "short",
            [_target(f"max by (instance) ({names.PROCESS_OPEN_FDS.prometheus})", "{{instance}}")],
        ),
    ]


def _pipeline_row() -> list[dict[str, Any]]:
    targets = [
        _target(f"sum by (exporter) (rate({counter}[{RATE}]))", f"{signal} failed {{{{exporter}}}}", ref)
        for (signal, counter), ref in zip(COLLECTOR.send_failed, "ABC", strict=True)
    ]
    queue = f"max by (exporter) ({COLLECTOR.queue_size}) / max by (exporter) ({COLLECTOR.queue_capacity})"
    targets.append(_target(queue, "queue {{exporter}}", "D"))
    alerts = _panel(30, "alertlist", "Firing alerts", (12, 36, 12, 8), [])
    alerts.pop("datasource")
    alerts["options"] = {
        "viewMode": "list",
        "groupMode": "default",
        "maxItems": 20,
        "sortOrder": 1,
        "dashboardAlerts": False,
        "alertName": "",
        "alertInstanceLabelFilter": "",
        "stateFilter": {"firing": True, "pending": True, "noData": True, "error": True, "normal": False},
    }
    return [
        _timeseries(PanelId.PIPELINE, "Telemetry pipeline (collector)", (0, 36, 12, 8), "short", targets),
        alerts,
    ]


def _traces_and_logs() -> list[dict[str, Any]]:
    tempo = {"type": "tempo", "uid": DATASOURCE_TEMPO}
    loki = {"type": "loki", "uid": DATASOURCE_LOKI}
    traces = _panel(
        31,
        "table",
        "Recent imports (traces)",
        (0, 44, 24, 8),
        [
            {
                "refId": "A",
                "datasource": tempo,
                "queryType": "traceql",
                "query": f'{{ name = "{names.SPAN_IMPORT}" }}',
                "limit": 20,
                "tableType": "traces",
            }
        ],
    )
    logs = _panel(
        32,
        "logs",
        "Importer logs",
        (0, 52, 24, 10),
        [
            {
                "refId": "A",
                "datasource": loki,
                "queryType": "range",
                "expr": f'{{service_name="{names.SERVICE_NAME_DEFAULT}"}}',
            }
        ],
    )
    logs["options"] = {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending"}
    return [traces, logs]


def dashboard() -> dict[str, Any]:
    """The ``grafana/dashboards/mnemo-importer.json`` model."""
    panels = [*_status_row(), *_throughput_rows(), *_problem_rows(), *_resource_row()]
    panels += [*_pipeline_row(), *_traces_and_logs(), *archive_row(70)]
    restrict_panels(panels)
    panels.append(fleet_table((0, 62, 24, 8)))
    for below in panels:  # the objectives (all hosts) come first
        below["gridPos"]["y"] += KPI_HEIGHT
    panels = [*kpi_row(), *panels]
    return {
        "uid": DASHBOARD_UID,
        "title": "Mnemo importer",
        "description": "Is the transcript importer alive, keeping up, and losing nothing?",
        "tags": ["mnemo"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [host_variable()]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
