"""Alert rules from the spec: Grafana file-provisioning rules and the Prometheus-rules mirror.

Field names follow Grafana's file format (``rules_types.go``: ``keepFiringFor``, ``noDataState``,
``dashboardUid``), not the HTTP API's. The mirror carries only what ``promtool test rules`` checks:
the condition, ``for``, ``keep_firing_for`` and the labels, after the SLI recording rules the
burn-rate queries read. Every Grafana rule carries ``runbook_url``: by default its panel of the
runbook dashboard (``runbook.py``), a path inside Grafana that needs no internet; rendered with a
base (a published copy of ``docs/runbook.md``), that base and the section's anchor.
"""

from __future__ import annotations

from typing import Any

from mnemo_otel.grafana.retired import RETIRED_RULE_UIDS
from mnemo_otel.grafana.rules import ALL_RULES
from mnemo_otel.grafana.runbook import rule_link
from mnemo_otel.grafana.slo import recording_rules
from mnemo_otel.grafana.spec import (
    DASHBOARD_UID,
    DATASOURCE_PROMETHEUS,
    EVALUATION_INTERVAL,
    EVALUATION_INTERVAL_S,
    RULE_FOLDER,
    RULE_GROUP,
    AlertSpec,
)

__all__ = ("QUERY_REF", "THRESHOLD_REF", "grafana_rules", "prometheus_mirror", "runbook_url")

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


def runbook_url(spec: AlertSpec, base: str | None = None) -> str:
    """The rule's runbook section: its panel of the runbook dashboard, or ``base#anchor``."""
    return rule_link(spec) if base is None else f"{base}#{spec.runbook_anchor}"


def _grafana_rule(spec: AlertSpec, runbook_base: str | None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "uid": spec.uid,
        "title": spec.name,
        "condition": THRESHOLD_REF,
        "data": [_query(spec), _threshold(spec)],
    }
    if spec.panel is not None:
        rule.update(dashboardUid=DASHBOARD_UID, panelId=int(spec.panel))
    rule.update(
        {
            "noDataState": spec.no_data,
            "execErrState": spec.exec_err,
            "for": spec.pending,
            "keepFiringFor": spec.keep_firing_for,
            "annotations": {
                "summary": spec.summary,
                "description": spec.description,
                "runbook": spec.runbook,
                "runbook_url": runbook_url(spec, runbook_base),
            },
            "labels": {"severity": spec.severity.value},
            "isPaused": False,
        }
    )
    return rule


def grafana_rules(runbook_base: str | None = None) -> dict[str, Any]:
    """The ``provisioning/alerting/rules.yaml`` document: one folder, one group, every rule; rules
    that left the spec are deleted (Grafana keeps a file rule that merely vanished from the file)."""
    group = {
        "orgId": 1,
        "name": RULE_GROUP,
        "folder": RULE_FOLDER,
        "interval": EVALUATION_INTERVAL,
        "rules": [_grafana_rule(spec, runbook_base) for spec in ALL_RULES],
    }
    document: dict[str, Any] = {"apiVersion": 1, "groups": [group]}
    if RETIRED_RULE_UIDS:
        document["deleteRules"] = [{"orgId": 1, "uid": uid} for uid in RETIRED_RULE_UIDS]
    return document


def _mirror_rule(spec: AlertSpec) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": spec.name, "expr": spec.condition, "for": spec.pending}
    if spec.keep_firing_for not in ("", "0s"):
        rule["keep_firing_for"] = spec.keep_firing_for
    rule["labels"] = {"severity": spec.severity.value}
    return rule


def prometheus_mirror() -> dict[str, Any]:
    """The Prometheus-rules mirror, evaluated at Grafana's interval; used only by promtool.

    The SLI recording groups come first, as Prometheus records them, so one file holds everything the
    alert queries read."""
    group = {
        "name": RULE_GROUP,
        "interval": EVALUATION_INTERVAL,
        "rules": [_mirror_rule(spec) for spec in ALL_RULES],
    }
    return {"groups": [*recording_rules()["groups"], group]}
