"""Grafana provisioning generated from one spec: datasources, dashboard, alert rules, contact points.

No OpenTelemetry import here: the generator needs only the contract's metric names.
"""

from __future__ import annotations

from mnemo_otel.grafana.render import check as check
from mnemo_otel.grafana.render import render_all as render_all
from mnemo_otel.grafana.rules import ALL_RULES as RULES
from mnemo_otel.grafana.spec import GRAFANA_VERSION as GRAFANA_VERSION
from mnemo_otel.grafana.spec import AlertSpec as AlertSpec

__all__ = ("GRAFANA_VERSION", "RULES", "AlertSpec", "check", "render_all")
