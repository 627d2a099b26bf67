"""Alert rules from the spec: Grafana file-provisioning rules and the Prometheus-rules mirror.

Field names follow Grafana's file format (``rules_types.go``: ``keepFiringFor``, ``noDataState``,
``dashboardUid``), not the HTTP API's. The mirror carries only what ``promtool test rules`` checks:
the condition, ``for``, ``keep_firing_for`` and the labels.
"""

from __future__ import annotations

from typing import Any

from mnemo_otel.grafana.spec import (
    DASHBOARD_UID,
    DATASOURCE_PROMETHEUS,
    EVALUATION_INTERVAL,
    EVALUATION_INTERVAL_S,
    RULE_FOLDER,
    RULE_GROUP,
    RULES,
    AlertSpec,
)

__all__ = ("QUERY_REF", "THRESHOLD_REF", "grafana_rules", "prometheus_mirror")

QUERY_REF = "A"
THRESHOLD_REF = "C"
EXPRESSION_DATASOURCE = "__expr__"


def _query(spec: AlertSpec) -> dict[str, Any]:
    return {
        "refId": QUERY_REF,
        "relativeTimeRange": {"from": 600, "to": 0},
        "datasourceUid": DATASOURCE_PROMETHEUS,
        "model": {
            "refId": QUERY_REF,
            "datasource": {"type": "prometheus", "uid": DATASOURCE_PROMETHEUS},
            "editorMode": "code",
            "expr": spec.query,
            "instant": True,
            "range": False,
            "intervalMs": EVALUATION_INTERVAL_S * 1000,
            "maxDataPoints": 43200,
        },
    }


def _threshold(spec: AlertSpec) -> dict[str, Any]:
    return {
        "refId": THRESHOLD_REF,
        "datasourceUid": EXPRESSION_DATASOURCE,
        "model": {
            "refId": THRESHOLD_REF,
            "datasource": {"type": EXPRESSION_DATASOURCE, "uid": EXPRESSION_DATASOURCE},
            "type": "threshold",
            "expression": QUERY_REF,
            "conditions": [{"evaluator": {"type": spec.op, "params": [spec.threshold]}}],
        },
    }


def _grafana_rule(spec: AlertSpec) -> dict[str, Any]:
    return {
        "uid": spec.uid,
        "title": spec.name,
        "condition": THRESHOLD_REF,
        "data": [_query(spec), _threshold(spec)],
        "dashboardUid": DASHBOARD_UID,
        "panelId": int(spec.panel),
        "noDataState": spec.no_data,
        "execErrState": spec.exec_err,
        "for": spec.pending,
        "keepFiringFor": spec.keep_firing_for,
        "annotations": {
            "summary": spec.summary,
            "description": spec.description,
            "runbook": spec.runbook,
        },
        "labels": {"severity": spec.severity.value},
        "isPaused": False,
    }


def grafana_rules() -> dict[str, Any]:
    """The ``provisioning/alerting/rules.yaml`` document: one folder, one group, every rule."""
    group = {
        "orgId": 1,
        "name": RULE_GROUP,
        "folder": RULE_FOLDER,
        "interval": EVALUATION_INTERVAL,
        "rules": [_grafana_rule(spec) for spec in RULES],
    }
    return {"apiVersion": 1, "groups": [group]}


def _mirror_rule(spec: AlertSpec) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": spec.name, "expr": spec.condition, "for": spec.pending}
    if spec.keep_firing_for not in ("", "0s"):
        rule["keep_firing_for"] = spec.keep_firing_for
    rule["labels"] = {"severity": spec.severity.value}
    return rule


def prometheus_mirror() -> dict[str, Any]:
    """The Prometheus-rules mirror, evaluated at Grafana's interval; used only by promtool."""
    group = {
        "name": RULE_GROUP,
        "interval": EVALUATION_INTERVAL,
        "rules": [_mirror_rule(spec) for spec in RULES],
    }
    return {"groups": [group]}
