"""Datasources with fixed uids and their correlations, plus the dashboards provider.

Grafana expands ``$VAR`` when it loads these files, so Grafana's own link variables are written
``$${...}`` (a literal ``$``). Trace ids reach Loki as structured metadata (``trace_id``) through
its OTLP endpoint, hence the label-type derived field and the ``| trace_id=`` filter.
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.spec import (
    DATASOURCE_LOKI,
    DATASOURCE_PROMETHEUS,
    DATASOURCE_TEMPO,
    EXPORT_INTERVAL_S,
)
from mnemo_otel.telemetry import names

__all__ = ("DASHBOARDS_FOLDER", "DASHBOARDS_PATH", "DATASOURCE_URLS", "dashboard_provider", "datasources")

DATASOURCE_URLS: Final = {
    DATASOURCE_PROMETHEUS: "http://prometheus:9090",
    DATASOURCE_TEMPO: "http://tempo:3200",
    DATASOURCE_LOKI: "http://loki:3100",
}
DASHBOARDS_PATH: Final = "/var/lib/grafana/dashboards/mnemo"
"""Where the compose file mounts ``grafana/dashboards`` inside the Grafana container."""
DASHBOARDS_FOLDER: Final = "Mnemo"

TRACE_ID_LABEL: Final = "trace_id"
_SERVICE_TAG: Final = {"key": "service.name", "value": "service_name"}


def _prometheus() -> dict[str, Any]:
    return {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": DATASOURCE_PROMETHEUS,
        "access": "proxy",
        "url": DATASOURCE_URLS[DATASOURCE_PROMETHEUS],
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "httpMethod": "POST",
            "timeInterval": f"{EXPORT_INTERVAL_S}s",
            "exemplarTraceIdDestinations": [
                {"name": TRACE_ID_LABEL, "datasourceUid": DATASOURCE_TEMPO, "urlDisplayLabel": "Import trace"}
            ],
        },
    }


def _traces_to_metrics_queries() -> list[dict[str, str]]:
    duration = names.IMPORT_DURATION.prometheus
    failures = names.IMPORT_FAILURES.prometheus
    return [
        {
            "name": "Import duration p95",
            "query": f"histogram_quantile(0.95, sum by (le) (rate({duration}_bucket{{$$__tags}}[5m])))",
        },
        {
            "name": "Import failures by type",
            "query": f"sum by (error_type) (rate({failures}{{$$__tags}}[5m]))",
        },
    ]


def _tempo() -> dict[str, Any]:
    return {
        "name": "Tempo",
        "type": "tempo",
        "uid": DATASOURCE_TEMPO,
        "access": "proxy",
        "url": DATASOURCE_URLS[DATASOURCE_TEMPO],
        "editable": False,
        "jsonData": {
            "tracesToLogsV2": {
                "datasourceUid": DATASOURCE_LOKI,
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "tags": [_SERVICE_TAG],
                "customQuery": True,
                "query": '{$${__tags}} | trace_id="$${__trace.traceId}"',
            },
            "tracesToMetrics": {
                "datasourceUid": DATASOURCE_PROMETHEUS,
                "spanStartTimeShift": "-15m",
                "spanEndTimeShift": "15m",
                "tags": [_SERVICE_TAG],
                "queries": _traces_to_metrics_queries(),
            },
            "serviceMap": {"datasourceUid": DATASOURCE_PROMETHEUS},
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
            "traceQuery": {"timeShiftEnabled": True, "spanStartTimeShift": "-15m", "spanEndTimeShift": "15m"},
        },
    }


def _loki() -> dict[str, Any]:
    return {
        "name": "Loki",
        "type": "loki",
        "uid": DATASOURCE_LOKI,
        "access": "proxy",
        "url": DATASOURCE_URLS[DATASOURCE_LOKI],
        "editable": False,
        "jsonData": {
            "maxLines": 1000,
            "derivedFields": [
                {
                    "name": "Trace",
                    "matcherType": "label",
                    "matcherRegex": TRACE_ID_LABEL,
                    "datasourceUid": DATASOURCE_TEMPO,
                    "url": "$${__value.raw}",
                    "urlDisplayLabel": "Import trace",
                }
            ],
        },
    }


def datasources() -> dict[str, Any]:
    """The ``provisioning/datasources/datasources.yaml`` document; ``prune`` drops stale ones."""
    return {"apiVersion": 1, "prune": True, "datasources": [_prometheus(), _tempo(), _loki()]}


def dashboard_provider() -> dict[str, Any]:
    """The ``provisioning/dashboards/mnemo.yaml`` provider: read-only, from ``DASHBOARDS_PATH``."""
    provider = {
        "name": "mnemo",
        "orgId": 1,
        "folder": DASHBOARDS_FOLDER,
        "folderUid": "mnemo",
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
    }
    return {"apiVersion": 1, "providers": [provider]}
